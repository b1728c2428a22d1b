//! A server in this process, over the memory transport: for `--local` play and for tests.

use std::sync::Arc;

use pong_domain::server::{ServerCore, ServerEvent};
use pong_ports::{Connector, TransportError};
use pong_transport_memory::{MemoryHub, MemoryOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running in-process server.
pub struct LocalServer {
    hub: MemoryHub,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<ServerCore, TransportError>>,
}

impl LocalServer {
    /// Starts `core` on a fresh memory hub. `on_event` sees the server's events.
    ///
    /// # Errors
    /// Only if the hub cannot hand out its endpoint (it always can when fresh).
    pub fn start(
        core: ServerCore,
        on_event: impl FnMut(&ServerEvent) + Send + 'static,
    ) -> Result<LocalServer, TransportError> {
        let hub = MemoryHub::new(MemoryOptions::default());
        let transport = Box::new(hub.server()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(crate::server::serve(
            core,
            transport,
            async move {
                let _ = stopped.await;
            },
            on_event,
        ));
        Ok(LocalServer { hub, stop: Some(stop), task })
    }

    /// A connector for clients of this server.
    pub fn connector(&self) -> Arc<dyn Connector> {
        Arc::new(self.hub.connector())
    }

    /// The hub, for tests that need its hooks.
    pub fn hub(&self) -> &MemoryHub {
        &self.hub
    }

    /// Stops the server and returns its core.
    ///
    /// # Errors
    /// The transport error that ended the server, if any.
    pub async fn stop(mut self) -> Result<ServerCore, TransportError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(TransportError::Other(format!("server task failed: {e}"))),
        }
    }
}
