//! What every end-to-end test of the `pong` binary shares: starting real `pong server` and
//! `pong bot` processes (killed when the test ends, whatever happens), watching their logs,
//! waiting with bounds, and checking that the JSON lines the bots print agree with each
//! other and with the server.
//!
//! Every wait is bounded; a test that times out prints the tail of each process's log. The
//! processes log at `info` to stderr (captured here, line by line, with the time each line
//! arrived); stdout carries only the bots' `--json` lines. To dig into a failure, set
//! `PONG_E2E_LOG` (the processes' `RUST_LOG`, e.g. `debug`) and `PONG_E2E_TAIL` (how many
//! log lines a timeout prints, 40 by default).
#![allow(dead_code, clippy::print_stderr, unreachable_pub)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const PONG: &str = env!("CARGO_BIN_EXE_pong");

/// Rules that keep a match to seconds: 4 players, 2 lives, 1000 ticks a second, a short
/// countdown. Physics runs per tick, so the game plays about 17 times faster than at 60 Hz.
pub const FAST_RULES: &[&str] =
    &["--players", "4", "--lives", "2", "--tick-hz", "1000", "--countdown-ms", "500"];

/// How long a whole match may take, from the processes' start to the bots' exit. A match
/// of [`FAST_RULES`] takes 1–6 s on an idle machine; this is for a loaded one.
pub const MATCH_LIMIT: Duration = Duration::from_secs(90);

/// A free TCP port on loopback (bound, read, released: another process could take it in
/// between, but the kernel does not hand it out again at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub use pong_tests::unique;

/// A directory of one test's files (certificates, session files), removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(unique(&format!("pong-e2e-{tag}")));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One line a process wrote to stderr, and when the test read it.
#[derive(Clone, Debug)]
pub struct Line {
    pub at: Instant,
    pub text: String,
}

/// A running `pong` process. Dropping it stops the process (SIGTERM, then SIGKILL) and, if
/// the test is failing, prints the tail of its log.
pub struct Proc {
    pub name: String,
    child: Child,
    log: Arc<Mutex<Vec<Line>>>,
    stdout: Option<JoinHandle<String>>,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `pong ARGS…`, logging at `info`.
    pub fn spawn<S: AsRef<str>>(name: &str, args: &[S]) -> Proc {
        Proc::spawn_program(name, PONG, args)
    }

    /// Starts `PROGRAM ARGS…` (another language's client, say) under the same watch as a
    /// `pong` process: stderr is its log, stdout its report.
    pub fn spawn_program<S: AsRef<str>>(name: &str, program: &str, args: &[S]) -> Proc {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let mut child = Command::new(program)
            .args(&args)
            // lapin logs every returned message at WARN; they are normal here.
            .env(
                "RUST_LOG",
                std::env::var("PONG_E2E_LOG").unwrap_or_else(|_| "info,lapin=error".to_owned()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(Line { at: Instant::now(), text: strip_ansi(&line) });
            }
        });
        let mut stdout = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let shown = if program == PONG { "pong" } else { program };
        eprintln!("[{name}] pid {}: {shown} {}", child.id(), args.join(" "));
        Proc { name: name.to_owned(), child, log, stdout: Some(stdout), status: None }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first log line containing `needle`, if one has arrived.
    pub fn find_log(&self, needle: &str) -> Option<Line> {
        self.log.lock().unwrap().iter().find(|l| l.text.contains(needle)).cloned()
    }

    /// The first log line arriving after `after` that contains `needle`.
    pub fn find_log_after(&self, needle: &str, after: Instant) -> Option<Line> {
        self.log.lock().unwrap().iter().find(|l| l.at >= after && l.text.contains(needle)).cloned()
    }

    /// How many log lines contain `needle`.
    pub fn count_log(&self, needle: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|l| l.text.contains(needle)).count()
    }

    /// Waits (at most `limit`) for a log line containing `needle`, arrived at or after
    /// `after`; panics with the log's tail if none comes or the process ends first.
    pub fn wait_for_log_after(&mut self, needle: &str, after: Instant, limit: Duration) -> Line {
        let start = Instant::now();
        loop {
            if let Some(line) = self.find_log_after(needle, after) {
                return line;
            }
            if let Some(status) = self.poll_exit() {
                // Lines written just before the exit may still be on their way.
                std::thread::sleep(Duration::from_millis(100));
                if let Some(line) = self.find_log_after(needle, after) {
                    return line;
                }
                panic!(
                    "[{}] exited ({status}) before logging {needle:?}\n{}",
                    self.name,
                    self.tail(
                        std::env::var("PONG_E2E_TAIL")
                            .ok()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(40)
                    )
                );
            }
            assert!(
                start.elapsed() < limit,
                "[{}] logged no {needle:?} within {limit:?}\n{}",
                self.name,
                self.tail(
                    std::env::var("PONG_E2E_TAIL").ok().and_then(|v| v.parse().ok()).unwrap_or(40)
                )
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (at most `limit`) for a log line containing `needle`.
    pub fn wait_for_log(&mut self, needle: &str, limit: Duration) -> Line {
        let epoch = self.log.lock().unwrap().first().map_or_else(Instant::now, |l| l.at);
        self.wait_for_log_after(needle, epoch.min(Instant::now()), limit)
    }

    /// The exit status if the process has ended.
    pub fn poll_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().unwrap();
        }
        self.status
    }

    /// Waits for the process to end (at most until `deadline`) and returns its stdout;
    /// panics with the log's tail on timeout.
    pub fn finish(&mut self, deadline: Instant) -> (ExitStatus, String) {
        loop {
            if let Some(status) = self.poll_exit() {
                let out = self.stdout.take().map(|t| t.join().unwrap()).unwrap_or_default();
                return (status, out);
            }
            assert!(
                Instant::now() < deadline,
                "[{}] still running at its deadline\n{}",
                self.name,
                self.tail(
                    std::env::var("PONG_E2E_TAIL").ok().and_then(|v| v.parse().ok()).unwrap_or(40)
                )
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (as `kill -9`), and reaps the process.
    pub fn kill(&mut self) {
        if self.poll_exit().is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// SIGTERM, without waiting for the process to act on it.
    pub fn sigterm(&self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
    }

    /// SIGTERM (a server shuts down cleanly: it tells its members and removes its broker
    /// queues), then SIGKILL if it is still running 5 s later.
    pub fn terminate(&mut self) {
        if self.poll_exit().is_some() {
            return;
        }
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        let start = Instant::now();
        while self.poll_exit().is_none() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }

    /// The last `n` lines of the log, runs of lines that differ only in their numbers (a
    /// timestamp, a count) shown once with how many there were.
    pub fn tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap();
        let shape = |text: &str| text.replace(|c: char| c.is_ascii_digit(), "");
        let mut runs: Vec<(&str, usize)> = Vec::new();
        for line in log.iter() {
            match runs.last_mut() {
                Some((last, count)) if shape(last) == shape(&line.text) => {
                    *last = &line.text;
                    *count += 1;
                }
                _ => runs.push((&line.text, 1)),
            }
        }
        let start = runs.len().saturating_sub(n);
        let mut text = format!("--- the end of [{}]'s log ({} lines) ---\n", self.name, log.len());
        for (line, count) in &runs[start..] {
            if *count > 1 {
                text.push_str(&format!("({count} lines like this one; the last:) "));
            }
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.terminate();
        if std::thread::panicking() {
            eprintln!("{}", self.tail(30));
        }
    }
}

/// The text of a log line without terminal colours.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters… final byte (a letter).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `pong server` with `transport` arguments, [`FAST_RULES`] and `extra` (whose options
/// replace those of [`FAST_RULES`]).
pub fn server(transport: &[&str], extra: &[&str]) -> Proc {
    let mut args = vec!["server"];
    args.extend_from_slice(transport);
    for pair in FAST_RULES.chunks(2) {
        if !extra.contains(&pair[0]) {
            args.extend_from_slice(pair);
        }
    }
    args.extend_from_slice(extra);
    Proc::spawn("server", &args)
}

/// The name prefix of bot process `i` (0 to 3): its one bot is called `bot-a1`, `bot-b1`…
pub fn bot_prefix(i: usize) -> String {
    format!("bot-{}", char::from(b'a' + u8::try_from(i).unwrap()))
}

/// One `pong bot --json` process (process `i`, 0 to 3, one bot) with `transport`
/// arguments, a seed of its own and `extra`.
pub fn bot(i: usize, transport: &[&str], skill: f64, extra: &[&str]) -> Proc {
    let prefix = bot_prefix(i);
    let seed = (i + 1).to_string();
    let skill = skill.to_string();
    let mut args = vec!["bot", "--json", "--name", &prefix, "--seed", &seed, "--skill", &skill];
    args.extend_from_slice(transport);
    args.extend_from_slice(extra);
    Proc::spawn(&prefix, &args)
}

/// Four bot processes (see [`bot`]).
pub fn four_bots(transport: &[&str], skill: f64) -> Vec<Proc> {
    (0..4).map(|i| bot(i, transport, skill, &[])).collect()
}

/// Checks that nothing disturbed a match: no bot desynced or was resumed.
pub fn assert_undisturbed(reports: &[Value]) {
    for r in reports {
        assert_eq!(num(r, "desyncs"), 0, "an undisturbed match desynced: {r:#}");
        assert_eq!(num(r, "resumes"), 0, "an undisturbed bot was resumed: {r:#}");
    }
}

/// Waits (until `deadline`) for a bot process to exit successfully and returns its one
/// JSON report.
pub fn report_of(bot: &mut Proc, deadline: Instant) -> Value {
    let (status, out) = bot.finish(deadline);
    assert!(status.success(), "[{}] failed ({status}); stdout: {out}\n{}", bot.name, bot.tail(40));
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "[{}] printed {} lines, not one JSON line:\n{out}",
        bot.name,
        lines.len()
    );
    serde_json::from_str(lines[0])
        .unwrap_or_else(|e| panic!("[{}] printed no JSON ({e}): {}", bot.name, lines[0]))
}

/// The reports of every bot, in process order, waiting at most [`MATCH_LIMIT`] from now.
pub fn reports(bots: &mut [Proc]) -> Vec<Value> {
    let deadline = Instant::now() + MATCH_LIMIT;
    bots.iter_mut().map(|b| report_of(b, deadline)).collect()
}

fn field<'a>(report: &'a Value, key: &str) -> &'a Value {
    report.get(key).unwrap_or_else(|| panic!("no {key:?} in the report {report}"))
}

/// A number field of a report.
pub fn num(report: &Value, key: &str) -> u64 {
    field(report, key).as_u64().unwrap_or_else(|| panic!("{key:?} is not a number in {report}"))
}

/// A string field of a report.
pub fn text<'a>(report: &'a Value, key: &str) -> &'a str {
    field(report, key).as_str().unwrap_or_else(|| panic!("{key:?} is not a string in {report}"))
}

/// The four reports describe one match the same way, and the same as the server:
/// - one match id; four different seats; each bot's name where its seat is;
/// - identical standings, winner and last tick;
/// - every bot's own hash of the final state equals the hash the server announced;
/// - the server logged that match ending at that tick with that winner.
///
/// Returns a one-line summary for the test's output.
pub fn assert_agree(reports: &[Value], server: &Proc) -> String {
    assert_eq!(reports.len(), 4, "expected four reports: {reports:#?}");
    let first = &reports[0];
    let all = || reports.iter();
    for r in all() {
        for key in ["match_id", "standings", "winner", "ticks", "server_hash"] {
            assert_eq!(
                field(r, key),
                field(first, key),
                "{key} differs between bots:\n{reports:#?}"
            );
        }
        assert_eq!(
            text(r, "final_hash"),
            text(r, "server_hash"),
            "a bot's final state differs from the server's:\n{r:#}"
        );
    }
    let seats: BTreeSet<u64> = all().map(|r| num(r, "player_id")).collect();
    assert_eq!(seats, (0..4).collect(), "the bots do not hold four different seats: {reports:#?}");
    let standings = field(first, "standings").as_array().unwrap();
    assert_eq!(standings.len(), 4, "four standings expected: {first:#}");
    for r in all() {
        let seat = usize::try_from(num(r, "player_id")).unwrap();
        assert_eq!(
            text(&standings[seat], "name"),
            text(r, "name"),
            "names and seats disagree: {r:#}"
        );
    }
    let ticks = num(first, "ticks");
    let winner = match field(first, "winner").as_u64() {
        Some(w) => format!("P{}", w + 1),
        None => "none (draw)".to_owned(),
    };
    let over =
        format!("match over match_id=m{} tick={ticks} winner={winner}", num(first, "match_id"));
    assert!(
        server.find_log(&over).is_some(),
        "the server did not log {over:?}\n{}",
        server.tail(40)
    );
    let pauses: Vec<u64> = all().map(|r| num(r, "pauses")).collect();
    let resumes: Vec<u64> = all().map(|r| num(r, "resumes")).collect();
    let desyncs: Vec<u64> = all().map(|r| num(r, "desyncs")).collect();
    format!(
        "match {} over at tick {ticks}, winner {winner}, hash {}; pauses {pauses:?}, resumes \
         {resumes:?}, desyncs {desyncs:?}",
        num(first, "match_id"),
        text(first, "final_hash"),
    )
}

/// Waits until `path` exists (a bot writes its session file when it is seated).
pub fn wait_for_file(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "{} did not appear within {limit:?}", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Where the RabbitMQ broker is, what to do when it is not there, and a lock that keeps the
/// broker-restart test from stopping the broker under another test: the same rules as the
/// adapter's tests, from `pong_tests::broker`.
#[cfg(feature = "rabbitmq")]
pub mod amqp {
    // Only the broker tests use it, and every test binary includes this module.
    #[allow(unused_imports)]
    pub use pong_tests::broker::*;
}
