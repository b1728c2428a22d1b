//! `pong server`: hosts matches until interrupted (Ctrl-C or SIGTERM).

use std::process::ExitCode;

use anyhow::{Context, Result};
use pong_domain::server::ServerCore;

use crate::cli::ServerArgs;
use crate::{journal, setup, transports};

pub(crate) async fn run(args: ServerArgs) -> Result<ExitCode> {
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| transports::default_listen(args.transport.transport).to_owned());
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(transports::ServerTls { cert: cert.clone(), key: key.clone() })
        }
        _ => None,
    };
    let mut config = setup::server_config(args.players, &args.rules, args.max_matches);
    config.record_ticks = args.db.is_some();
    let mut core = ServerCore::new(config, setup::os_seed()?);
    // The journal first: matches that were running when a server on it died come back
    // before anyone can connect.
    let store = match &args.db {
        Some(path) => Some(journal::open_and_restore(path, args.db_sync, &mut core).await?),
        None => None,
    };
    let transport = transports::server(&args.transport, &listen, tls)
        .await
        .with_context(|| format!("cannot start the server on {listen}"))?;
    match store {
        Some(store) => {
            let flush = std::time::Duration::from_millis(args.db_flush_ms);
            journal::serve_journaled(core, transport, store, flush, setup::shutdown_signal())
                .await?;
        }
        None => {
            pong_runtime::server::serve(core, transport, setup::shutdown_signal(), |_| {}).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
