//! Issue 19, finding 5, through the real server driver over a real RabbitMQ broker: a
//! stranger who learns a player's reply-queue name publishes garbage and a forged `bye`
//! under it while the player's match runs. Before, 17 garbage frames or one `bye` dropped
//! the player's link and paused the match; now each is refused and counted, the link stays
//! (a queue name is no proof of who sent a frame), and the match plays to its end with no
//! pause. Needs the broker (`.ci/rabbitmq.sh`); under `CI=true` it fails without one.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use pong_domain::client::ClientPhase;
use pong_domain::journal::Record;
use pong_domain::proto::{MatchId, MatchOver};
use pong_domain::server::{ServerConfig, ServerCore, ServerEvent};
use pong_domain::testing::short_matches;
use pong_ports::{ClientTransport, Connector, TransportError};
use pong_tests::broker::BrokerLock;
use pong_transport_amqp::{AmqpConnector, AmqpOptions, AmqpServer};

/// Opens real AMQP links and writes down each one's reply-queue name, as a stranger who
/// read it somewhere would know it.
struct Named {
    inner: AmqpConnector,
    queues: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Connector for Named {
    async fn connect(&self) -> Result<Box<dyn ClientTransport>, TransportError> {
        let client = self.inner.connect_client().await?;
        self.queues.lock().unwrap().push(client.queue_name().to_owned());
        Ok(Box::new(client))
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_using_a_players_queue_name_disturbs_nothing() {
    common::logs();
    let Some(url) = pong_tests::broker::broker("abuse_amqp") else { return };
    let _lock = BrokerLock::shared("abuse_amqp");
    let options = AmqpOptions::named(pong_tests::unique("test-abuse"));
    let inbound = options.inbound_queue();
    let transport = AmqpServer::connect(&url, options.clone()).await.unwrap();
    let results = Arc::new(Mutex::new(BTreeMap::<MatchId, MatchOver>::new()));
    let sink = Arc::clone(&results);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(pong_runtime::server::serve(
        ServerCore::new(ServerConfig { tick_hz: 120, ..short_matches(2) }, [19; 32]),
        Box::new(transport),
        async move {
            let _ = stopped.await;
        },
        move |e| {
            if let ServerEvent::Match { match_id, record: Record::Over { result } } = e {
                sink.lock().unwrap().insert(*match_id, result.clone());
            }
        },
    ));
    let queues = Arc::new(Mutex::new(Vec::new()));
    let victim = Named {
        inner: AmqpConnector::new(&url, options.clone()).unwrap(),
        queues: Arc::clone(&queues),
    };
    let players = [
        common::spawn_player("Ada", 2, Arc::new(victim), 1),
        common::spawn_player("Bob", 2, Arc::new(AmqpConnector::new(&url, options).unwrap()), 2),
    ];
    let queue = loop {
        if let Some(q) = queues.lock().unwrap().first() {
            break q.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Into the match (a 3 s countdown), then the stranger publishes under Ada's queue name.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let raw = Connection::connect(&url, ConnectionProperties::default()).await.unwrap();
    let channel = raw.create_channel().await.unwrap();
    let publish = async |body: &[u8], properties: BasicProperties| {
        channel
            .basic_publish(
                "".into(),
                inbound.as_str().into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .unwrap();
    };
    let as_ada = || BasicProperties::default().with_reply_to(queue.as_str().into());
    for i in 0..40u8 {
        publish(&[3, 1, i, 0xff, 0xfe], as_ada()).await;
        if i == 20 {
            publish(b"", as_ada().with_type("pong.bye".into())).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !players.iter().any(tokio::task::JoinHandle::is_finished),
        "the match was over before the stranger was done: this run proves nothing"
    );
    let mut cores = Vec::new();
    for p in players {
        cores.push(tokio::time::timeout(Duration::from_secs(180), p).await.unwrap().unwrap());
    }
    let _ = raw.close(200, "done".into()).await;
    let _ = stop.send(());
    let stats = server.await.unwrap().unwrap().stats().clone();
    let results = results.lock().unwrap();
    for core in &cores {
        let ClientPhase::Over { result, final_hash } = core.phase() else {
            panic!("a player's match did not end: {:?}", core.phase());
        };
        let truth = &results[&core.match_id().unwrap()];
        assert_eq!((result, *final_hash), (truth, truth.final_hash.0));
        assert_eq!(core.desyncs(), 0);
        assert_eq!(core.pauses(), 0, "the match paused: a stranger dropped a player's link");
    }
    assert!(stats.malformed >= 40, "{stats:?}");
    assert_eq!(stats.peers_dropped, 0, "{stats:?}");
}
