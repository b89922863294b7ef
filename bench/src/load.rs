//! The load generator: `concurrency` workers, each on its own keep-alive HTTP/1.1
//! connection, send the same request until the count or the duration runs out. It measures
//! the whole answer, or the time to the first token of a stream.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::Mutex;

#[derive(clap::Args)]
pub struct Options {
    /// `http://host:port/path`.
    #[arg(long)]
    url: String,
    #[arg(long)]
    token: Option<String>,
    /// Extra headers, `Name: value`.
    #[arg(long)]
    header: Vec<String>,
    /// The JSON request body.
    #[arg(long)]
    body: String,
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Stop after this many measured requests...
    #[arg(long)]
    requests: Option<i64>,
    /// ...or after this long.
    #[arg(long)]
    duration_ms: Option<u64>,
    /// Requests sent first and not measured.
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    #[arg(long, value_enum, default_value = "total")]
    measure: Measure,
    /// One streaming request per connection: prints `{"ready": true}` once every stream has
    /// its first token, then reads them to the end.
    #[arg(long)]
    hold: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Measure {
    /// Until the whole answer arrived.
    Total,
    /// Until the first chat chunk with content (`data:` lines, OpenAI's shape).
    ChatFirstToken,
    /// Until the first `message.delta` event of a native run stream.
    RunFirstToken,
}

struct Target {
    address: String,
    request: hyper::Request<Full<Bytes>>,
}

impl Target {
    fn parse(options: &Options) -> anyhow::Result<Self> {
        let rest = options.url.strip_prefix("http://").context("the url must be http://")?;
        let (address, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
        let mut request = hyper::Request::post(path)
            .header("host", address)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(options.body.clone())))?;
        let headers = request.headers_mut();
        if let Some(token) = &options.token {
            headers.insert("authorization", format!("Bearer {token}").parse()?);
        }
        for header in &options.header {
            let (name, value) = header.split_once(':').context("headers are `Name: value`")?;
            headers.insert(hyper::header::HeaderName::from_bytes(name.trim().as_bytes())?, value.trim().parse()?);
        }
        Ok(Self { address: address.to_owned(), request })
    }

    fn request(&self) -> hyper::Request<Full<Bytes>> {
        let mut request = hyper::Request::post(self.request.uri().clone()).body(self.request.body().clone()).unwrap();
        *request.headers_mut() = self.request.headers().clone();
        request
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(&self.address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(sender)
    }
}

/// What the workers share: the budget, the tallies, and for `hold` the streams that started.
struct Shared {
    remaining: AtomicI64,
    deadline: Option<Instant>,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    started_streams: AtomicUsize,
    all_started: tokio::sync::Notify,
}

impl Shared {
    fn take_one(&self) -> bool {
        if self.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return false;
        }
        self.remaining.fetch_sub(1, Ordering::Relaxed) > 0
    }
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let target = Arc::new(Target::parse(&options)?);
    let measure = options.measure;
    if options.warmup > 0 {
        let mut sender = target.connect().await?;
        for _ in 0..options.warmup {
            one(&mut sender, &target, measure, None).await.context("a warmup request failed")?;
        }
    }
    let requests = if options.hold { options.concurrency as i64 } else { options.requests.unwrap_or(i64::MAX) };
    let shared = Arc::new(Shared {
        remaining: AtomicI64::new(requests),
        deadline: options.duration_ms.map(|ms| Instant::now() + Duration::from_millis(ms)),
        errors: AtomicU64::new(0),
        first_error: Mutex::new(None),
        started_streams: AtomicUsize::new(0),
        all_started: tokio::sync::Notify::new(),
    });
    if options.hold {
        let shared = shared.clone();
        let streams = options.concurrency;
        tokio::spawn(async move {
            let started = shared.all_started.notified();
            if shared.started_streams.load(Ordering::SeqCst) < streams {
                started.await;
            }
            println!("{}", json!({"ready": true}));
            let _ = std::io::stdout().flush();
        });
    }
    let began = Instant::now();
    let workers: Vec<_> = (0..options.concurrency)
        .map(|_| {
            let (target, shared) = (target.clone(), shared.clone());
            let hold = options.hold.then_some(options.concurrency);
            tokio::spawn(async move { worker(&target, &shared, measure, hold).await })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await?);
    }
    let elapsed = began.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let errors = shared.errors.load(Ordering::Relaxed);
    let summary = summary(&latencies, errors, elapsed, shared.first_error.lock().await.take());
    println!("{summary}");
    Ok(())
}

async fn worker(target: &Target, shared: &Shared, measure: Measure, hold: Option<usize>) -> Vec<u64> {
    let mut latencies = Vec::new();
    let mut sender = None;
    while shared.take_one() {
        let result = async {
            if sender.is_none() {
                sender = Some(target.connect().await?);
            }
            let started = hold.map(|streams| (shared, streams));
            one(sender.as_mut().expect("connected above"), target, measure, started).await
        }
        .await;
        match result {
            Ok(micros) => latencies.push(micros),
            Err(err) => {
                sender = None;
                shared.errors.fetch_add(1, Ordering::Relaxed);
                shared.first_error.lock().await.get_or_insert_with(|| format!("{err:#}"));
            }
        }
    }
    latencies
}

/// One request, its latency in microseconds.
async fn one(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    measure: Measure,
    started: Option<(&Shared, usize)>,
) -> anyhow::Result<u64> {
    sender.ready().await?;
    let begun = Instant::now();
    let response = sender.send_request(target.request()).await?;
    let status = response.status();
    let mut body = response.into_body();
    if !status.is_success() {
        let text = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        bail!("answered {status}: {}", String::from_utf8_lossy(&text));
    }
    let mut scanner = FirstToken { measure, line: Vec::new(), found: measure == Measure::Total };
    let mut first = None;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Some(data) = frame.data_ref() else { continue };
        if first.is_none() && scanner.feed(data) {
            first = Some(begun.elapsed());
            if let Some((shared, streams)) = started
                && shared.started_streams.fetch_add(1, Ordering::SeqCst) + 1 == streams
            {
                shared.all_started.notify_one();
            }
        }
    }
    let latency = match measure {
        Measure::Total => begun.elapsed(),
        _ => first.ok_or_else(|| anyhow!("the stream ended without a token"))?,
    };
    Ok(latency.as_micros() as u64)
}

/// Finds the first token in a stream, line by line.
struct FirstToken {
    measure: Measure,
    line: Vec<u8>,
    found: bool,
}

impl FirstToken {
    fn feed(&mut self, data: &[u8]) -> bool {
        if self.found {
            return false;
        }
        for &byte in data {
            if byte != b'\n' {
                self.line.push(byte);
                continue;
            }
            let line = std::mem::take(&mut self.line);
            if self.is_token(line.strip_suffix(b"\r").unwrap_or(&line)) {
                self.found = true;
                return true;
            }
        }
        false
    }

    fn is_token(&self, line: &[u8]) -> bool {
        match self.measure {
            Measure::Total => false,
            Measure::RunFirstToken => line == b"event: message.delta",
            Measure::ChatFirstToken => {
                let Some(data) = line.strip_prefix(b"data: ") else { return false };
                let chunk: Value = serde_json::from_slice(data).unwrap_or_default();
                chunk["choices"][0]["delta"]["content"].as_str().is_some_and(|content| !content.is_empty())
            }
        }
    }
}

pub fn summary(sorted: &[u64], errors: u64, elapsed: f64, first_error: Option<String>) -> Value {
    let percentile = |q: f64| {
        if sorted.is_empty() {
            return 0;
        }
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    };
    let mean = if sorted.is_empty() { 0.0 } else { sorted.iter().sum::<u64>() as f64 / sorted.len() as f64 };
    json!({
        "ok": sorted.len(),
        "errors": errors,
        "first_error": first_error,
        "elapsed_s": elapsed,
        "rps": sorted.len() as f64 / elapsed.max(f64::EPSILON),
        "p50_us": percentile(0.50),
        "p99_us": percentile(0.99),
        "p999_us": percentile(0.999),
        "mean_us": mean,
        "max_us": sorted.last().copied().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_token_is_the_first_content() {
        let mut chat = FirstToken { measure: Measure::ChatFirstToken, line: Vec::new(), found: false };
        assert!(!chat.feed(b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"));
        assert!(!chat.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"He"));
        assert!(chat.feed(b"l\"}}]}\n\n"));
        let mut run = FirstToken { measure: Measure::RunFirstToken, line: Vec::new(), found: false };
        assert!(!run.feed(b"event: run.started\r\ndata: {}\r\n\r\n"));
        assert!(run.feed(b"event: message.delta\r\n"));
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let sorted: Vec<u64> = (1..=1000).collect();
        let summary = summary(&sorted, 0, 1.0, None);
        assert_eq!((summary["p50_us"].as_u64(), summary["p999_us"].as_u64()), (Some(500), Some(999)));
    }
}
