//! `cargo xtask bench`: what the server adds on every turn, measured against the same mock
//! upstream reached directly, in interleaved rounds, optionally beside LiteLLM's proxy.
//! See docs/benchmarks.md for what each figure means.

mod litellm;
mod process;
mod report;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use self::process::{Process, command, free_port};
use crate::workspace_root;

pub struct Options {
    pub rounds: usize,
    pub postgres: Option<String>,
    pub vs_litellm: bool,
    /// Fewer and shorter measurements, to try the harness out.
    pub quick: bool,
}

impl Options {
    pub fn parse(args: &[&str]) -> anyhow::Result<Self> {
        let mut options = Self { rounds: 5, postgres: None, vs_litellm: false, quick: false };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match *arg {
                "--vs-litellm" => options.vs_litellm = true,
                "--quick" => options.quick = true,
                "--rounds" => options.rounds = args.next().context("--rounds N")?.parse()?,
                "--postgres" => options.postgres = Some(args.next().context("--postgres URL")?.to_string()),
                other => bail!("unknown option {other}"),
            }
        }
        if options.rounds == 0 {
            bail!("--rounds must be at least 1");
        }
        Ok(options)
    }
}

/// One run of the load generator, as it reports it.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Sample {
    pub ok: u64,
    pub errors: u64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
}

/// Where a request goes: the mock itself, our server, or LiteLLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Direct,
    Ours,
    Litellm,
}

impl Target {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Ours => "ours",
            Self::Litellm => "litellm",
        }
    }
}

/// The concurrency levels of the throughput runs, against a mock answering in 20 ms.
pub const LEVELS: [usize; 4] = [1, 16, 64, 256];
const THROUGHPUT_MOCK: &str = "bench-l20-c1";
const LATENCY_MOCK: &str = "bench-l0-c1";
const TTFT_MOCK: &str = "bench-l0-c64-i20";
/// First token at once, then two more 4 s apart: streams that stay open while RSS is read.
const SLOW_MOCK: &str = "bench-l0-c3-i4000";
const HELD_STREAMS: usize = 1000;
/// Memories of the smith whose runs measure what memory costs.
const MEMORIES: usize = 30;
const ADMIN_TOKEN: &str = "tha_live_benchbenchbenchbenchbenchbench";
/// The threads of the SQLite run store (engine/run_store/sqlite.rs): its CPU is the
/// database's work per turn.
const DATABASE_THREADS: [&str; 2] = ["run-writer", "wal-checkpoint"];

struct Bench {
    tool: PathBuf,
    mock_url: String,
    ours_url: String,
    litellm_url: Option<String>,
    smith_id: String,
    /// A smith with a written block and [`MEMORIES`] memories.
    remembering_smith_id: String,
    quick: bool,
}

/// Every measurement, by name, one value per round.
#[derive(Default)]
pub struct Results {
    pub rounds: BTreeMap<String, Vec<f64>>,
    pub single: BTreeMap<String, f64>,
}

impl Results {
    fn push(&mut self, key: String, value: f64) {
        self.rounds.entry(key).or_default().push(value);
    }

    fn record(&mut self, prefix: &str, sample: &Sample) {
        for (field, value) in
            [("p50_us", sample.p50_us), ("p99_us", sample.p99_us), ("p999_us", sample.p999_us), ("rps", sample.rps)]
        {
            self.push(format!("{prefix}.{field}"), value);
        }
    }

    pub fn median(&self, key: &str) -> Option<f64> {
        let mut values = self.rounds.get(key)?.clone();
        values.sort_by(f64::total_cmp);
        Some(values[values.len() / 2])
    }
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let root = workspace_root();
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    eprintln!("building the server and the load generator in release mode");
    let status = std::process::Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["build", "--release", "--quiet", "--bin", "ingram", "--bin", "ingram-bench"])
        .status()?;
    if !status.success() {
        bail!("the release build failed");
    }
    let tool = root.join("target/release/ingram-bench");
    let litellm_venv = if options.vs_litellm { Some(litellm::install(&out)?) } else { None };

    let mut mock = Process::spawn("mock", command(&tool).arg("mock"))?;
    let mock_address = mock.first_line()?;
    let mock_url = format!("http://{mock_address}/v1");

    let work = tempdir(&out)?;
    let database = Database::prepare(options.postgres.as_deref(), &work)?;
    let port = free_port()?;
    let (server, ours_base) = start_server(&root, &database, &mock_url, &work, port)?;

    let mut litellm = match &litellm_venv {
        Some(venv) => Some(litellm::start(venv, &work, &mock_url)?),
        None => None,
    };
    let smith = post_json(&format!("{ours_base}/v1/smiths"), &json!({"external_id": "bench"}))?;
    let smith_id = smith["id"].as_str().context("a smith id")?.to_owned();
    let remembering_smith_id = remembering_smith(&ours_base)?;
    let bench = Bench {
        tool,
        mock_url,
        ours_url: format!("{ours_base}/v1"),
        litellm_url: litellm.as_ref().map(|(_, url)| url.clone()),
        smith_id,
        remembering_smith_id,
        quick: options.quick,
    };

    let mut results = Results::default();
    results.single.insert("rss_idle_bytes.ours".into(), server.rss_bytes() as f64);
    if let Some((process, _)) = &litellm {
        results.single.insert("rss_idle_bytes.litellm".into(), process.rss_bytes() as f64);
    }
    let mut ours_ok = 0;
    let mut cpu = BTreeMap::<Target, (f64, u64)>::new();
    let database_cpu = || DATABASE_THREADS.iter().map(|name| server.thread_cpu_seconds(name)).sum::<f64>();
    let mut database_spent = (0.0, 0);
    for round in 1..=options.rounds {
        eprintln!("round {round} of {}", options.rounds);
        ours_ok += bench.latency_round(&mut results)?;
        ours_ok += bench.ttft_round(&mut results)?;
        for level in LEVELS {
            for target in bench.targets() {
                let process = match target {
                    Target::Ours => Some(&server),
                    Target::Litellm => litellm.as_ref().map(|(process, _)| process),
                    Target::Direct => None,
                };
                let before = process.map(Process::cpu_seconds);
                let database_before = database_cpu();
                let sample = bench.throughput(target, level)?;
                if let (Some(process), Some(before)) = (process, before) {
                    let spent = cpu.entry(target).or_default();
                    spent.0 += process.cpu_seconds() - before;
                    spent.1 += sample.ok;
                }
                if target == Target::Ours {
                    ours_ok += sample.ok;
                    database_spent.0 += database_cpu() - database_before;
                    database_spent.1 += sample.ok;
                }
                results.record(&format!("throughput.{}.c{level}", target.name()), &sample);
            }
        }
    }
    for (target, (seconds, requests)) in cpu {
        results.single.insert(format!("cpu_s_per_1000.{}", target.name()), seconds / requests.max(1) as f64 * 1000.0);
    }
    if options.postgres.is_none() {
        let (seconds, requests) = database_spent;
        results.single.insert("database_cpu_us_per_run.ours".into(), seconds / requests.max(1) as f64 * 1e6);
    } else {
        // Before the held streams, whose runs go on for seconds after their requests.
        eprintln!("following runs from a second replica");
        let (lag, runs) = bench.replica_lag(&root, &database, &work)?;
        results.record("replicas.lag", &lag);
        ours_ok += runs;
    }
    eprintln!("holding {HELD_STREAMS} streams open");
    let (per_stream, held_ok) = bench.held_streams(&server, Target::Ours)?;
    results.single.insert("rss_per_stream_bytes.ours".into(), per_stream);
    ours_ok += held_ok;
    if let Some((process, _)) = &litellm {
        let (per_stream, _) = bench.held_streams(process, Target::Litellm)?;
        results.single.insert("rss_per_stream_bytes.litellm".into(), per_stream);
    }
    // Runs outlive their requests: let the held streams' runs finish before counting rows.
    std::thread::sleep(Duration::from_secs(2));
    let completed = database.completed_runs()?;
    results.single.insert("rows.successful_requests".into(), ours_ok as f64);
    results.single.insert("rows.completed_runs".into(), completed as f64);

    drop(litellm.take());
    drop(server);
    drop(mock);
    database.drop_if_postgres()?;
    let machine = report::Machine::read(if options.postgres.is_some() { "PostgreSQL" } else { "SQLite" });
    report::write(&out, &machine, options, &results)?;
    std::fs::remove_dir_all(&work).ok();
    Ok(())
}

/// Our server on `port`, over `database`, reaching the mock at `mock_url`; ready when this
/// returns.
fn start_server(
    root: &Path,
    database: &Database,
    mock_url: &str,
    work: &Path,
    port: u16,
) -> anyhow::Result<(Process, String)> {
    let mut server = Process::spawn(
        "ingram",
        command(&root.join("target/release/ingram"))
            .args(["--database-url", &database.url, "serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("INGRAM_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("INGRAM_DATA_DIR", work)
            .env("INGRAM_LOG", "warn")
            .env("OPENAI_API_KEY", "sk-bench")
            .env("OPENAI_BASE_URL", mock_url)
            .stdout(std::process::Stdio::null()),
    )?;
    let base = format!("http://127.0.0.1:{port}");
    server.wait_ready(&format!("{base}/healthz"), Duration::from_secs(60))?;
    Ok((server, base))
}

impl Bench {
    /// Starts a second replica on the same PostgreSQL database and measures how late it
    /// streams the events of runs executing on the first.
    /// The lag's summary, and how many runs it executed.
    fn replica_lag(&self, root: &Path, database: &Database, work: &Path) -> anyhow::Result<(Sample, u64)> {
        let (_replica, replica_base) = start_server(root, database, &self.mock_url, work, free_port()?)?;
        let ours_base = self.ours_url.strip_suffix("/v1").unwrap_or(&self.ours_url);
        let runs: u64 = if self.quick { 3 } else { 10 };
        let output = command(&self.tool)
            .args(["replicas", "--a", ours_base, "--b", &replica_base, "--token", ADMIN_TOKEN])
            .args(["--smith", &self.smith_id, "--runs", &runs.to_string(), "--body", &Self::run_body(TTFT_MOCK, true)])
            .output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let line = text.lines().last().context("the replica follower printed nothing")?;
        if !output.status.success() {
            bail!("following runs from a second replica failed: {line}");
        }
        // One more run than measured warms the replicas up.
        Ok((serde_json::from_str(line).with_context(|| format!("replica summary: {line}"))?, runs + 1))
    }

    fn targets(&self) -> Vec<Target> {
        let mut targets = vec![Target::Direct, Target::Ours];
        if self.litellm_url.is_some() {
            targets.push(Target::Litellm);
        }
        targets
    }

    fn chat_url(&self, target: Target) -> String {
        match target {
            Target::Direct => format!("{}/chat/completions", self.mock_url),
            Target::Ours => format!("{}/chat/completions", self.ours_url),
            Target::Litellm => format!("{}/chat/completions", self.litellm_url.as_deref().unwrap_or_default()),
        }
    }

    fn chat_body(&self, target: Target, model: &str, stream: bool) -> String {
        let mut body = json!({"model": model, "messages": [{"role": "user", "content": "Say hello"}]});
        if stream {
            body["stream"] = json!(true);
        }
        if target == Target::Ours {
            body["user"] = json!("bench");
        }
        body.to_string()
    }

    fn run_url(&self) -> String {
        format!("{}/smiths/{}/runs", self.ours_url, self.smith_id)
    }

    fn remembering_run_url(&self) -> String {
        format!("{}/smiths/{}/runs", self.ours_url, self.remembering_smith_id)
    }

    fn run_body(model: &str, stream: bool) -> String {
        json!({"model": model, "stream": stream, "input": [{"role": "user", "content": "Say hello"}]}).to_string()
    }

    /// Concurrency 1, whole answers: direct, chat completions, native runs (and LiteLLM).
    fn latency_round(&self, results: &mut Results) -> anyhow::Result<u64> {
        let requests = if self.quick { 300 } else { 2000 };
        let mut ours_ok = 0;
        for target in self.targets() {
            let count = if target == Target::Litellm { requests / 4 } else { requests };
            let count = count.to_string();
            let sample = self.load(
                target,
                &self.chat_url(target),
                &self.chat_body(target, LATENCY_MOCK, false),
                &["--requests", &count, "--warmup", "20"],
            )?;
            results.record(&format!("latency.chat.{}", target.name()), &sample);
            if target == Target::Ours {
                ours_ok += sample.ok + 20;
                let sample = self.load(
                    target,
                    &self.run_url(),
                    &Self::run_body(LATENCY_MOCK, false),
                    &["--requests", &count, "--warmup", "20"],
                )?;
                results.record("latency.run.ours", &sample);
                ours_ok += sample.ok + 20;
                let sample = self.load(
                    target,
                    &self.remembering_run_url(),
                    &Self::run_body(LATENCY_MOCK, false),
                    &["--requests", &count, "--warmup", "20"],
                )?;
                results.record("latency.run_memory.ours", &sample);
                ours_ok += sample.ok + 20;
            }
        }
        Ok(ours_ok)
    }

    /// Time to the first token of 64-chunk streams, four at a time.
    fn ttft_round(&self, results: &mut Results) -> anyhow::Result<u64> {
        let duration = if self.quick { "3000" } else { "8000" };
        let args = ["--concurrency", "4", "--duration-ms", duration, "--measure"];
        let mut ours_ok = 0;
        for target in self.targets() {
            let body = self.chat_body(target, TTFT_MOCK, true);
            let sample =
                self.load(target, &self.chat_url(target), &body, &[&args[..], &["chat-first-token"]].concat())?;
            results.record(&format!("ttft.chat.{}", target.name()), &sample);
            if target == Target::Ours {
                ours_ok += sample.ok;
                let body = Self::run_body(TTFT_MOCK, true);
                let sample = self.load(target, &self.run_url(), &body, &[&args[..], &["run-first-token"]].concat())?;
                results.record("ttft.run.ours", &sample);
                ours_ok += sample.ok;
            }
        }
        Ok(ours_ok)
    }

    fn throughput(&self, target: Target, level: usize) -> anyhow::Result<Sample> {
        let duration = if self.quick { "1500" } else { "4000" };
        let body = self.chat_body(target, THROUGHPUT_MOCK, false);
        let level = level.to_string();
        self.load(target, &self.chat_url(target), &body, &["--concurrency", &level, "--duration-ms", duration])
    }

    /// Opens `HELD_STREAMS` streams against a slow mock and reads the process's memory once
    /// every one of them has its first token: bytes per open stream above the idle baseline.
    fn held_streams(&self, process: &Process, target: Target) -> anyhow::Result<(f64, u64)> {
        let before = process.rss_bytes();
        let streams = HELD_STREAMS.to_string();
        let mut load = Process::spawn(
            "load",
            self.load_command(target, &self.chat_url(target), &self.chat_body(target, SLOW_MOCK, true)).args([
                "--concurrency",
                &streams,
                "--hold",
                "--measure",
                "chat-first-token",
            ]),
        )?;
        let mut lines = BufReader::new(load.take_stdout().context("load stdout")?).lines();
        let ready = lines.next().context("the load generator ended early")??;
        if !ready.contains("ready") {
            bail!("holding streams against {} failed: {ready}", target.name());
        }
        let held = process.rss_bytes();
        let summary: Sample = serde_json::from_str(&lines.next().context("no summary")??)?;
        if summary.errors > 0 {
            bail!("{} of the held streams against {} failed", summary.errors, target.name());
        }
        Ok((held.saturating_sub(before) as f64 / HELD_STREAMS as f64, summary.ok))
    }

    fn load_command(&self, target: Target, url: &str, body: &str) -> std::process::Command {
        let mut load = command(&self.tool);
        load.args(["load", "--url", url, "--body", body]);
        if target == Target::Ours {
            load.args(["--token", ADMIN_TOKEN]);
        }
        load
    }

    fn load(&self, target: Target, url: &str, body: &str, args: &[&str]) -> anyhow::Result<Sample> {
        let output = self.load_command(target, url, body).args(args).output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let line = text.lines().last().context("the load generator printed nothing")?;
        let summary: Value = serde_json::from_str(line).with_context(|| format!("load summary: {line}"))?;
        let sample: Sample = serde_json::from_value(summary.clone())?;
        if !output.status.success() || sample.errors > 0 || sample.ok == 0 {
            bail!("load against {} ({url}) failed: {summary}", target.name());
        }
        Ok(sample)
    }
}

/// The benchmark's database: a file in the work folder, or a fresh PostgreSQL database.
struct Database {
    url: String,
    admin_url: Option<String>,
    name: String,
}

impl Database {
    fn prepare(postgres: Option<&str>, work: &Path) -> anyhow::Result<Self> {
        let Some(admin_url) = postgres else {
            let url = format!("sqlite://{}?mode=rwc", work.join("bench.db").display());
            return Ok(Self { url, admin_url: None, name: String::new() });
        };
        let name = format!("ingram_bench_{}", std::process::id());
        block_on(async {
            let admin = sea_orm::Database::connect(admin_url).await?;
            sea_orm::ConnectionTrait::execute_unprepared(&admin, &format!("CREATE DATABASE {name}")).await?;
            anyhow::Ok(())
        })?;
        let base = admin_url.rsplit_once('/').map_or(admin_url, |(base, _)| base);
        Ok(Self { url: format!("{base}/{name}"), admin_url: Some(admin_url.to_owned()), name })
    }

    fn completed_runs(&self) -> anyhow::Result<u64> {
        block_on(async {
            use ingram_core::{store::run, types::RunStatus};
            use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
            let db = sea_orm::Database::connect(&self.url).await?;
            let store = run::Entity::find().filter(run::Column::Status.eq(RunStatus::Completed)).count(&db).await?;
            anyhow::Ok(store)
        })
    }

    fn drop_if_postgres(&self) -> anyhow::Result<()> {
        let Some(admin_url) = &self.admin_url else { return Ok(()) };
        block_on(async {
            let admin = sea_orm::Database::connect(admin_url.as_str()).await?;
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            sea_orm::ConnectionTrait::execute_unprepared(&admin, &drop).await?;
            anyhow::Ok(())
        })
    }
}

fn block_on<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(future)
}

fn post_json(url: &str, body: &Value) -> anyhow::Result<Value> {
    send_json(reqwest::Method::POST, url, body)
}

fn send_json(method: reqwest::Method, url: &str, body: &Value) -> anyhow::Result<Value> {
    block_on(async {
        let request = reqwest::Client::new().request(method.clone(), url).bearer_auth(ADMIN_TOKEN).json(body);
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("{method} {url} answered {status}: {body}");
        }
        Ok(body)
    })
}

/// A smith that remembers: its `human` block written and [`MEMORIES`] memories, more than a
/// run's context holds, so every run of it searches them.
fn remembering_smith(ours_base: &str) -> anyhow::Result<String> {
    let smith = post_json(&format!("{ours_base}/v1/smiths"), &json!({"external_id": "bench-memory"}))?;
    let smith_id = smith["id"].as_str().context("a smith id")?.to_owned();
    let human = json!({"value": "Ada Lovelace, a mathematician in London. Prefers short answers."});
    send_json(reqwest::Method::PATCH, &format!("{ours_base}/v1/smiths/{smith_id}/blocks/human"), &human)?;
    for i in 0..MEMORIES {
        let text = if i % 10 == 0 {
            format!("The user says hello in language number {i}.")
        } else {
            format!("The user's fact number {i}: likes topic {i} and place {}.", i * 7)
        };
        post_json(&format!("{ours_base}/v1/smiths/{smith_id}/memories"), &json!({"text": text}))?;
    }
    Ok(smith_id)
}

fn tempdir(out: &Path) -> anyhow::Result<PathBuf> {
    let dir = out.join(format!("work-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
