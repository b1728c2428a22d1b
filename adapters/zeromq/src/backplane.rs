//! The private endpoint between the guard relay and the zeromq crate's ROUTER socket.
//!
//! On unix it is a socket file in a fresh directory only this user can enter (0700), so
//! nothing else on the host can reach the unguarded ROUTER; it is removed when the last
//! user of the backplane is dropped. Elsewhere it is an ephemeral loopback tcp port, which
//! other local processes could reach: the guard then only protects against remote peers.

use std::io;

#[cfg(unix)]
pub(crate) type BackplaneStream = tokio::net::UnixStream;
#[cfg(not(unix))]
pub(crate) type BackplaneStream = tokio::net::TcpStream;

/// Where the relay finds the ROUTER. Removes its directory when dropped.
#[derive(Debug)]
pub(crate) struct Backplane {
    #[cfg(unix)]
    dir: std::path::PathBuf,
    #[cfg(unix)]
    path: std::path::PathBuf,
    #[cfg(not(unix))]
    addr: std::net::SocketAddr,
}

impl Backplane {
    /// Creates the endpoint, returning the listener for the ROUTER to adopt.
    #[cfg(unix)]
    pub(crate) fn create() -> io::Result<(Self, zeromq::Listener)> {
        use std::os::unix::fs::DirBuilderExt;
        use std::sync::atomic::{AtomicU64, Ordering};

        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        let mut attempts = 0;
        let dir = loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = base.join(format!("pong-zmq-{}-{n}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => break dir,
                // A leftover of an earlier process with the same pid: try the next name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 64 => {
                    attempts += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let path = dir.join("router.sock");
        let listener = match std::os::unix::net::UnixListener::bind(&path) {
            Ok(listener) => listener,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        Ok((Self { dir, path }, listener.into()))
    }

    /// Creates the endpoint, returning the listener for the ROUTER to adopt.
    #[cfg(not(unix))]
    pub(crate) fn create() -> io::Result<(Self, zeromq::Listener)> {
        let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        Ok((Self { addr }, listener.into()))
    }

    /// Opens a connection to the ROUTER.
    pub(crate) async fn connect(&self) -> io::Result<BackplaneStream> {
        #[cfg(unix)]
        {
            tokio::net::UnixStream::connect(&self.path).await
        }
        #[cfg(not(unix))]
        {
            let stream = tokio::net::TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            Ok(stream)
        }
    }
}

#[cfg(unix)]
impl Drop for Backplane {
    fn drop(&mut self) {
        // The crate also removes its socket file when its accept loop stops; whichever is
        // second finds it gone, which is fine.
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::debug!(
                dir = %self.dir.display(),
                error = %e,
                "cannot remove the zmq backplane directory",
            );
        }
    }
}
