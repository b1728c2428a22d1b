//! CPU time and memory of this process and its threads, from Linux's `/proc` (no unsafe
//! code, no extra dependency). CPU times come in clock ticks of 10 ms (`USER_HZ` = 100), so
//! measure over windows of seconds.

use std::time::Duration;

use anyhow::{Context, Result};

/// Clock ticks per second of `/proc/*/stat` (`getconf CLK_TCK`; 100 on every Linux
/// architecture this runs on).
const USER_HZ: u64 = 100;

/// user + system CPU time from a `stat` file's text.
fn cpu_of_stat(text: &str) -> Result<Duration> {
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let after = text.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// CPU time (user + system) the calling thread has used.
///
/// # Errors
/// `/proc` is not there (not Linux).
pub fn thread_cpu() -> Result<Duration> {
    cpu_of_stat(&std::fs::read_to_string("/proc/thread-self/stat")?)
}

/// CPU time (user + system) of the whole process, every thread included.
///
/// # Errors
/// `/proc` is not there (not Linux).
pub fn process_cpu() -> Result<Duration> {
    cpu_of_stat(&std::fs::read_to_string("/proc/self/stat")?)
}

/// CPU time (user + system) of another process (`pid`), every thread included.
///
/// # Errors
/// No such process, or `/proc` is not there (not Linux).
pub fn process_cpu_of(pid: u32) -> Result<Duration> {
    cpu_of_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)
}

/// Resident memory of the process, in bytes.
///
/// # Errors
/// `/proc` is not there (not Linux).
pub fn rss_bytes() -> Result<u64> {
    rss_of_status(&std::fs::read_to_string("/proc/self/status")?)
}

/// Resident memory of another process (`pid`), in bytes.
///
/// # Errors
/// No such process, or `/proc` is not there (not Linux).
pub fn rss_bytes_of(pid: u32) -> Result<u64> {
    rss_of_status(&std::fs::read_to_string(format!("/proc/{pid}/status"))?)
}

fn rss_of_status(status: &str) -> Result<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    let kb: u64 = line.split_whitespace().nth(1).context("no VmRSS value")?.parse()?;
    Ok(kb * 1024)
}

/// The 1-minute load average of the machine (`/proc/loadavg`).
///
/// # Errors
/// `/proc` is not there (not Linux).
pub fn load_average() -> Result<f64> {
    let text = std::fs::read_to_string("/proc/loadavg")?;
    Ok(text.split_whitespace().next().context("empty loadavg")?.parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_spaces_in_the_name_parse() {
        let line = "1234 (tokio runtime) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3 0";
        assert_eq!(cpu_of_stat(line).unwrap(), Duration::from_millis(3000));
    }

    #[test]
    fn this_process_has_a_cpu_time_and_memory() {
        assert!(process_cpu().is_ok());
        assert!(thread_cpu().is_ok());
        assert!(rss_bytes().unwrap() > 0);
        let me = std::process::id();
        assert!(rss_bytes_of(me).unwrap() > 0);
        assert!(process_cpu_of(me).is_ok());
    }
}
