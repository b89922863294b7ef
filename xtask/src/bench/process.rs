//! The processes a benchmark runs: each is killed when its handle drops, and sampled for its
//! memory and CPU time through /proc.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub struct Process {
    pub name: &'static str,
    child: Child,
}

impl Process {
    pub fn spawn(name: &'static str, command: &mut Command) -> anyhow::Result<Self> {
        let child = command.spawn().with_context(|| format!("starting {name}"))?;
        Ok(Self { name, child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first line the process printed.
    pub fn first_line(&mut self) -> anyhow::Result<String> {
        let stdout = self.child.stdout.take().context("stdout is not piped")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        Ok(line.trim().to_owned())
    }

    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Resident memory of the process and its descendants, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        tree(self.pid()).iter().map(|pid| status_kib(*pid, "VmRSS:") * 1024).sum()
    }

    /// CPU seconds (user + system) the process and its descendants used so far.
    pub fn cpu_seconds(&self) -> f64 {
        tree(self.pid()).iter().map(|pid| cpu_ticks(*pid)).sum::<u64>() as f64 / CLOCK_TICKS
    }

    /// CPU seconds the process's threads named `name` used so far.
    pub fn thread_cpu_seconds(&self, name: &str) -> f64 {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) else { return 0.0 };
        let ticks: u64 = tasks
            .flatten()
            .filter(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name))
            .filter_map(|task| {
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                Some(utime_stime(&stat))
            })
            .sum();
        ticks as f64 / CLOCK_TICKS
    }

    /// Waits until `url` answers 200, or fails after `timeout`.
    pub fn wait_ready(&mut self, url: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited with {status} before it was ready", self.name);
            }
            if http_get_status(url).is_ok_and(|status| status == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!("{} was not ready within {timeout:?}", self.name)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Linux's USER_HZ, which /proc/<pid>/stat counts CPU time in.
const CLOCK_TICKS: f64 = 100.0;

fn tree(root: u32) -> Vec<u32> {
    let mut pids = vec![root];
    let Ok(entries) = std::fs::read_dir("/proc") else { return pids };
    let parents: Vec<(u32, u32)> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat_fields(pid)?.get(1)?.parse().ok()?)))
        .collect();
    let mut index = 0;
    while index < pids.len() {
        let parent = pids[index];
        pids.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        index += 1;
    }
    pids
}

/// The fields of a /proc stat line after the command name: state, ppid, …
fn fields_after_name(stat: &str) -> Option<Vec<String>> {
    let after_name = &stat[stat.rfind(')')? + 2..];
    Some(after_name.split_whitespace().map(str::to_owned).collect())
}

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    fields_after_name(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime of a stat line: fields 14 and 15 of the line, 12 and 13 after the name.
fn utime_stime(stat: &str) -> u64 {
    fields_after_name(stat)
        .map_or(0, |fields| fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0))
}

fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(0, |stat| utime_stime(&stat))
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A plain HTTP/1.1 GET, enough for readiness checks without an HTTP client.
pub fn http_get_status(url: &str) -> anyhow::Result<u16> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").context("an http:// url")?;
    let (address, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    Ok(std::str::from_utf8(&head[9..12])?.parse()?)
}

/// A port nothing listens on now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn command(program: &Path) -> Command {
    let mut command = Command::new(program);
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    command
}
