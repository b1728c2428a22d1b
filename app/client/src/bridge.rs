//! The bridge between Bevy's frame loop and the async transport: a thread of its own runs a
//! small tokio runtime that owns the link ([`ClientTransport`]); Bevy systems talk to it only
//! through two unbounded channels, so no system ever blocks or awaits.
//!
//! - Bevy → link ([`ToLink`]): frames to send, subscriptions, "reconnect", "retry", "close".
//! - link → Bevy ([`FromLink`]): connection progress, frames received, subscriptions
//!   confirmed, the link lost, giving up.
//!
//! The link task dials with exponential backoff ([`ReconnectPolicy`]) and reports every
//! failed attempt (the
//! Connecting screen shows them). Once up, it pumps frames until the link drops or Bevy asks
//! for a reconnect; after a drop it waits for the core's `Reconnect` command, so the
//! [`ClientCore`](pong_domain::client::ClientCore) stays the one that decides.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use pong_domain::proto::MatchId;
use pong_ports::{ClientTransport, Connector};
use pong_transport_support::ReconnectPolicy;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tracing::{debug, info, warn};

/// How persistently the game window dials: it gives up on the first connection after 10 s
/// (the Connecting screen then offers to try again), where a headless client's
/// [`ReconnectPolicy::default`] keeps at it for 30 s.
pub const WINDOW_RECONNECT: ReconnectPolicy = ReconnectPolicy {
    first_connect: Duration::from_secs(10),
    reconnect: Duration::from_secs(60),
    backoff_min: Duration::from_millis(100),
    backoff_max: Duration::from_secs(2),
};

/// What Bevy asks of the link.
#[derive(Debug)]
pub(crate) enum ToLink {
    /// Send a frame to the server (dropped while no link is up).
    Frame(Vec<u8>),
    /// Subscribe to a match group; answered by [`FromLink::Subscribed`].
    Subscribe(MatchId),
    /// Drop the link (if any) and dial again.
    Reconnect,
    /// Close the link after what is queued, and end the task.
    Close,
}

/// What the link tells Bevy.
#[derive(Debug)]
pub(crate) enum FromLink {
    /// Dialling attempt `attempt` failed with `error`; trying again.
    Attempt {
        /// 1 for the first attempt.
        attempt: u32,
        /// Why it failed.
        error: String,
    },
    /// A link is up.
    Connected,
    /// A frame from the server.
    Frame(Bytes),
    /// The subscription to a group is confirmed.
    Subscribed(MatchId),
    /// The link is gone (or a subscription failed); waiting for [`ToLink::Reconnect`].
    Lost(String),
    /// Dialling gave up; waiting for [`ToLink::Reconnect`].
    GaveUp(String),
}

/// The Bevy end of the bridge: channels to the link thread, and the thread itself.
pub(crate) struct Bridge {
    to_link: UnboundedSender<ToLink>,
    from_link: Receiver<FromLink>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Bridge {
    /// Starts the link thread: it dials `connector` at once.
    pub(crate) fn spawn(connector: Arc<dyn Connector>, policy: ReconnectPolicy) -> Bridge {
        let (to_link, commands) = unbounded_channel();
        let (events, from_link) = crossbeam_channel::unbounded();
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let spawned = std::thread::Builder::new().name("pong-net".into()).spawn(move || {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(link_task(connector, policy, commands, events)),
                Err(e) => {
                    let _ = events
                        .send(FromLink::GaveUp(format!("cannot start the network runtime: {e}")));
                }
            }
            let _ = done_tx.send(());
        });
        let thread = match spawned {
            Ok(t) => Some(t),
            Err(e) => {
                warn!(error = %e, "cannot start the network thread");
                None
            }
        };
        Bridge { to_link, from_link, done, thread }
    }

    /// Queues a command for the link (never blocks).
    pub(crate) fn send(&self, cmd: ToLink) {
        let _ = self.to_link.send(cmd);
    }

    /// Everything the link has reported since the last call (never blocks).
    pub(crate) fn drain(&self) -> crossbeam_channel::TryIter<'_, FromLink> {
        self.from_link.try_iter()
    }
}

impl Drop for Bridge {
    /// Closes the link after the frames already queued (a `Leave`, say) and gives the thread
    /// a moment to do so; it is not waited for longer than that.
    fn drop(&mut self) {
        let _ = self.to_link.send(ToLink::Close);
        if self.thread.is_some() && self.done.recv_timeout(Duration::from_millis(500)).is_err() {
            debug!("network thread still closing; not waiting for it");
        }
        drop(self.thread.take());
    }
}

/// What the dialling step ended with.
enum Dialled {
    Up(Box<dyn ClientTransport>),
    GaveUp,
    Close,
}

/// Runs until Bevy says [`ToLink::Close`] or drops its end.
async fn link_task(
    connector: Arc<dyn Connector>,
    policy: ReconnectPolicy,
    mut commands: UnboundedReceiver<ToLink>,
    events: Sender<FromLink>,
) {
    let mut ever_connected = false;
    loop {
        let dialled = dial(connector.as_ref(), &policy, ever_connected, &mut commands, &events);
        let mut link = match dialled.await {
            Dialled::Up(l) => l,
            Dialled::Close => return,
            Dialled::GaveUp => {
                if wait_for_reconnect(&mut commands).await {
                    continue;
                }
                return;
            }
        };
        ever_connected = true;
        if events.send(FromLink::Connected).is_err() {
            link.close().await;
            return;
        }
        match pump(link.as_mut(), &mut commands, &events).await {
            Pumped::Reconnect => {
                link.close().await;
            }
            Pumped::Close => {
                link.close().await;
                return;
            }
            Pumped::Lost => {
                drop(link);
                if !wait_for_reconnect(&mut commands).await {
                    return;
                }
            }
        }
    }
}

/// Dials with exponential backoff for as long as `policy` allows, reporting each failed
/// attempt.
async fn dial(
    connector: &dyn Connector,
    policy: &ReconnectPolicy,
    ever_connected: bool,
    commands: &mut UnboundedReceiver<ToLink>,
    events: &Sender<FromLink>,
) -> Dialled {
    let mut retry = policy.retry(ever_connected);
    loop {
        let attempt = retry.attempt();
        let mut connect = connector.connect();
        let result = loop {
            tokio::select! {
                r = &mut connect => break r,
                cmd = commands.recv() => match cmd {
                    Some(ToLink::Close) | None => return Dialled::Close,
                    // Frames for a link that is not there yet are the core's to resend.
                    Some(_) => {}
                },
            }
        };
        let error = match result {
            Ok(link) => {
                info!(server = %connector.describe(), attempt, "connected");
                return Dialled::Up(link);
            }
            Err(e) => e.to_string(),
        };
        debug!(server = %connector.describe(), attempt, %error, "cannot connect yet");
        let Some(pause) = retry.pause() else {
            let server = connector.describe();
            let msg = if error.contains(&server) {
                format!("{error} (gave up after {attempt} attempts)")
            } else {
                format!("cannot reach {server}: {error} (gave up after {attempt} attempts)")
            };
            warn!("{msg}");
            let _ = events.send(FromLink::GaveUp(msg));
            return Dialled::GaveUp;
        };
        if events.send(FromLink::Attempt { attempt, error }).is_err() {
            return Dialled::Close;
        }
        let sleep = tokio::time::sleep(pause);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                cmd = commands.recv() => match cmd {
                    Some(ToLink::Close) | None => return Dialled::Close,
                    Some(_) => {}
                },
            }
        }
    }
}

/// Waits, dropping frames, until Bevy asks for a new link (true) or closes (false).
async fn wait_for_reconnect(commands: &mut UnboundedReceiver<ToLink>) -> bool {
    loop {
        match commands.recv().await {
            Some(ToLink::Reconnect) => return true,
            Some(ToLink::Close) | None => return false,
            Some(ToLink::Frame(_) | ToLink::Subscribe(_)) => {}
        }
    }
}

/// Why pumping a link stopped.
enum Pumped {
    Reconnect,
    Close,
    Lost,
}

/// Moves frames both ways until the link drops or Bevy asks for something else.
async fn pump(
    link: &mut dyn ClientTransport,
    commands: &mut UnboundedReceiver<ToLink>,
    events: &Sender<FromLink>,
) -> Pumped {
    loop {
        tokio::select! {
            biased;
            cmd = commands.recv() => match cmd {
                Some(ToLink::Frame(f)) => {
                    if let Err(e) = link.send(Bytes::from(f)) {
                        let _ = events.send(FromLink::Lost(e.to_string()));
                        return Pumped::Lost;
                    }
                }
                Some(ToLink::Subscribe(group)) => match link.subscribe(group).await {
                    Ok(()) => {
                        let _ = events.send(FromLink::Subscribed(group));
                    }
                    Err(e) => {
                        let _ = events.send(FromLink::Lost(e.to_string()));
                        return Pumped::Lost;
                    }
                },
                Some(ToLink::Reconnect) => return Pumped::Reconnect,
                Some(ToLink::Close) | None => return Pumped::Close,
            },
            frame = link.recv() => match frame {
                Ok(f) => {
                    if events.send(FromLink::Frame(f)).is_err() {
                        return Pumped::Close;
                    }
                }
                Err(e) => {
                    let _ = events.send(FromLink::Lost(e.to_string()));
                    return Pumped::Lost;
                }
            },
        }
    }
}
