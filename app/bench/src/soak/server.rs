//! The server under soak: a real `pong server` process with a journal, watched from outside
//! through its `/metrics` endpoint and `/proc`, stopped with SIGTERM, and its journal
//! re-run by `pong replay --verify` at the end.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::procstat;
use crate::transports::Kind;

/// How to start the server.
#[derive(Clone, Debug)]
pub struct ServerPlan {
    /// The `pong` binary.
    pub pong: PathBuf,
    /// The transport.
    pub kind: Kind,
    /// The broker, for amqp.
    pub amqp_url: String,
    /// Lives per player.
    pub lives: u8,
    /// Ticks per second.
    pub tick_hz: u16,
    /// Seconds a lost player has to come back.
    pub grace_secs: u64,
    /// Where the journal and the server's log go.
    pub dir: PathBuf,
}

/// A running `pong server`; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Where clients dial it.
    pub address: String,
    metrics: String,
    /// The journal.
    pub db: PathBuf,
    /// Its stderr.
    pub log: PathBuf,
    pong: PathBuf,
}

/// One look at the server from outside.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// Seconds since the soak began.
    pub at: f64,
    /// Resident memory, bytes.
    pub rss: u64,
    /// CPU time used so far, seconds.
    pub cpu: f64,
    /// `pong_tick_duration_seconds_sum`: the server loop's busy time so far.
    pub busy: f64,
    /// `pong_ticks_total`: match ticks simulated so far.
    pub ticks: f64,
    /// `pong_overruns_total`.
    pub overruns: f64,
    /// Matches running (`pong_matches{phase="running"}`).
    pub running: f64,
    /// Matches hosted, in any phase.
    pub hosted: f64,
    /// Client links (`pong_links`, every transport).
    pub links: f64,
    /// `pong_pauses_total`.
    pub pauses: f64,
    /// `pong_forfeits_total`.
    pub forfeits: f64,
    /// `pong_links_dropped_total`: links the server dropped for misbehaving (none expected).
    pub dropped: f64,
    /// The machine's 1-minute load average.
    pub load: f64,
    /// `pong_journal_commit_seconds_sum`: time the journal's commits took so far.
    pub commit: f64,
    /// `pong_journal_commit_seconds_count`: commits so far.
    pub commits: f64,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl ServerProcess {
    /// Starts the server and waits (up to 30 s) until its `/metrics` answers.
    ///
    /// # Errors
    /// The binary cannot be started, or the server does not come up.
    pub async fn start(plan: &ServerPlan) -> Result<ServerProcess> {
        let metrics_port = free_port()?;
        let (listen, address) = match plan.kind {
            Kind::Ws => {
                let port = free_port()?;
                (format!("127.0.0.1:{port}"), format!("ws://127.0.0.1:{port}"))
            }
            Kind::Zmq => {
                let port = free_port()?;
                (format!("tcp://127.0.0.1:{port}"), format!("tcp://127.0.0.1:{port}"))
            }
            Kind::Amqp => {
                let name = crate::transports::unique_name("soak");
                (name.clone(), name)
            }
            Kind::Memory => bail!("a soak runs over a network transport"),
        };
        let db = plan.dir.join("soak.db");
        let log = plan.dir.join("server.log");
        let stderr = std::fs::File::create(&log).context("cannot create the server's log")?;
        let child = Command::new(&plan.pong)
            .args(["server", "--transport", plan.kind.name(), "--listen", &listen])
            .args(["--amqp-url", &plan.amqp_url])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
            .arg("--db")
            .arg(&db)
            .args(["--lives", &plan.lives.to_string(), "--tick-hz", &plan.tick_hz.to_string()])
            .args(["--grace-secs", &plan.grace_secs.to_string()])
            // Every client of a soak comes from this host: the per-address bounds are for
            // strangers, not for the load.
            .args(["--max-links-per-address", "1000000"])
            .args(["--matches-per-minute-per-address", "1000000"])
            .env("RUST_LOG", std::env::var("PONG_SOAK_SERVER_LOG").unwrap_or("info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", plan.pong.display()))?;
        let mut server = ServerProcess {
            child,
            address,
            metrics: format!("127.0.0.1:{metrics_port}"),
            db,
            log,
            pong: plan.pong.clone(),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!("the server exited at once ({status}); see {}", server.log.display());
            }
            if server.metrics().await.is_ok() {
                return Ok(server);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the server did not come up in 30 s; see {}", server.log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Every series of `/metrics`, by name with its labels as printed.
    ///
    /// # Errors
    /// The endpoint does not answer with 200.
    pub async fn metrics(&self) -> Result<HashMap<String, f64>> {
        let body = http_get(&self.metrics, "/metrics").await?;
        Ok(parse_metrics(&body))
    }

    /// A sample of the server now.
    ///
    /// # Errors
    /// The process is gone or its metrics do not answer.
    pub async fn sample(&self, at: f64) -> Result<Sample> {
        let m = self.metrics().await?;
        let get = |name: &str| m.get(name).copied().unwrap_or(0.0);
        let sum = |prefix: &str| {
            m.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| *v).sum::<f64>()
        };
        Ok(Sample {
            at,
            rss: procstat::rss_bytes_of(self.pid())?,
            cpu: procstat::process_cpu_of(self.pid())?.as_secs_f64(),
            busy: get("pong_tick_duration_seconds_sum"),
            ticks: get("pong_ticks_total"),
            overruns: get("pong_overruns_total"),
            running: get("pong_matches{phase=\"running\"}"),
            hosted: sum("pong_matches{"),
            links: sum("pong_links{"),
            pauses: get("pong_pauses_total"),
            forfeits: get("pong_forfeits_total"),
            dropped: get("pong_links_dropped_total"),
            load: procstat::load_average().unwrap_or(f64::NAN),
            commit: get("pong_journal_commit_seconds_sum"),
            commits: get("pong_journal_commit_seconds_count"),
        })
    }

    /// Stops the server with SIGTERM (it stops at once: no drain) and waits for it.
    ///
    /// # Errors
    /// The signal cannot be sent or the process does not exit within 30 s.
    pub async fn stop(mut self) -> Result<()> {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status()?;
        if !status.success() {
            bail!("cannot signal the server");
        }
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the server exited with {status}; see {}", self.log.display());
                }
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the server did not stop within 30 s of SIGTERM")
    }

    /// Runs `pong replay DB --verify --json` on the journal: one line per finished match.
    ///
    /// # Errors
    /// The command cannot run or prints something that is not JSON.
    pub fn verify_journal(pong: &Path, db: &Path) -> Result<Vec<serde_json::Value>> {
        let out = Command::new(pong)
            .arg("replay")
            .arg(db)
            .args(["--verify", "--json"])
            .stderr(Stdio::inherit())
            .output()
            .context("cannot run pong replay")?;
        String::from_utf8(out.stdout)?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).with_context(|| format!("not JSON: {l}")))
            .collect()
    }

    /// The `pong` binary the server runs.
    #[must_use]
    pub fn pong(&self) -> &Path {
        &self.pong
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET to `addr`, the body of a 200 answer.
async fn http_get(addr: &str, path: &str) -> Result<String> {
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        anyhow::Ok(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .context("no answer in 10 s")??;
    let text = String::from_utf8(answer)?;
    let (head, body) = text.split_once("\r\n\r\n").context("not an HTTP answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("{path}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(body.to_owned())
}

/// The samples of a Prometheus text exposition, keyed by the series as printed
/// (`name{label="value"}`); comments and unparsable lines are skipped.
#[must_use]
pub fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.trim().to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text_parses_by_series() {
        let text = "# HELP pong_ticks_total x\n# TYPE pong_ticks_total counter\n\
                    pong_ticks_total 1234\npong_matches{phase=\"running\"} 7\n\
                    pong_tick_duration_seconds_sum 0.5\nbroken\n";
        let m = parse_metrics(text);
        assert_eq!(m["pong_ticks_total"], 1234.0);
        assert_eq!(m["pong_matches{phase=\"running\"}"], 7.0);
        assert_eq!(m["pong_tick_duration_seconds_sum"], 0.5);
        assert_eq!(m.len(), 3);
    }
}
