//! A server and bots in one process over the memory transport, on paused (virtual) time.

#![allow(clippy::unwrap_used)]

use pong_domain::server::{ServerConfig, ServerCore};
use pong_runtime::bot::{BotOptions, run_bots};
use pong_runtime::local::LocalServer;

#[tokio::test(start_paused = true)]
async fn four_bots_finish_a_match_and_agree() {
    let config = ServerConfig { default_players: 4, lives: 2, ..ServerConfig::default() };
    let server = LocalServer::start(ServerCore::new(config, [3; 32]), |_| {}).unwrap();
    let opts = BotOptions { count: 4, players: Some(4), ..BotOptions::default() };
    let reports: Vec<_> =
        run_bots(server.connector(), &opts).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(reports.len(), 4);
    for r in &reports {
        assert_eq!(r.final_hash, r.server_hash);
        assert_eq!(r.standings, reports[0].standings);
        assert_eq!(r.final_hash, reports[0].final_hash);
        assert_eq!(r.desyncs, 0);
    }
    let core = server.stop().await.unwrap();
    assert_eq!(core.stats().matches_finished, 1);
}
