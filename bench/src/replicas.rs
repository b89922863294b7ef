//! How late a stream on one replica hears of a run executing on another: each run is started,
//! streamed, on replica `a` and followed at once on replica `b`; every event's arrival is timed
//! on both, and `b`'s lag behind `a` summarized (events `b` replayed from before it subscribed
//! do not count).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;

#[derive(clap::Args)]
pub struct Options {
    /// The replica that executes the runs, `http://host:port`.
    #[arg(long)]
    a: String,
    /// The replica that follows them.
    #[arg(long)]
    b: String,
    #[arg(long)]
    token: String,
    #[arg(long)]
    smith: String,
    /// The body of each run, streamed (`"stream": true`).
    #[arg(long)]
    body: String,
    #[arg(long, default_value_t = 8)]
    runs: usize,
}

/// When each event (by sequence number) arrived.
type Arrivals = HashMap<i64, Instant>;

pub async fn run(options: Options) -> anyhow::Result<()> {
    // A first run, not measured, opens the replicas' connections.
    one_run(&options).await?;
    let began = Instant::now();
    let mut lags = Vec::new();
    for _ in 0..options.runs {
        lags.extend(one_run(&options).await?);
    }
    lags.sort_unstable();
    println!("{}", crate::load::summary(&lags, 0, began.elapsed().as_secs_f64(), None));
    Ok(())
}

async fn one_run(options: &Options) -> anyhow::Result<Vec<u64>> {
    let runs = format!("/v1/smiths/{}/runs", options.smith);
    let request = hyper::Request::post(&runs)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(options.body.clone())))?;
    let mut executing = send(&options.a, &options.token, request).await?;
    let run_id = executing
        .headers()
        .get("x-run-id")
        .and_then(|value| value.to_str().ok())
        .context("the run's stream names no run")?
        .to_owned();
    let events = format!("{runs}/{run_id}/events");
    let (b, token) = (options.b.clone(), options.token.clone());
    let follower = tokio::spawn(async move {
        let request = hyper::Request::get(&events).body(Empty::<Bytes>::new())?;
        let mut following = send(&b, &token, request).await?;
        let subscribed = Instant::now();
        let arrivals = arrivals(following.body_mut()).await?;
        anyhow::Ok((subscribed, arrivals))
    });
    let on_a = arrivals(executing.body_mut()).await?;
    let (subscribed, on_b) = tokio::time::timeout(Duration::from_secs(30), follower).await???;
    let mut lags = Vec::new();
    for (seq, at_a) in &on_a {
        let Some(at_b) = on_b.get(seq) else { bail!("replica b never sent event {seq} of {run_id}") };
        if *at_a > subscribed {
            let lag = at_b.saturating_duration_since(*at_a).as_micros() as u64;
            if lag > 5000 && std::env::var("DEBUG_LAG").is_ok() {
                eprintln!("seq {seq} lag {lag} (of {})", on_a.len());
            }
            lags.push(lag);
        }
    }
    Ok(lags)
}

async fn send<B>(
    base: &str,
    token: &str,
    mut request: hyper::Request<B>,
) -> anyhow::Result<hyper::Response<hyper::body::Incoming>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let address = base.strip_prefix("http://").context("replica urls are http://")?;
    let stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let headers = request.headers_mut();
    headers.insert("host", address.parse()?);
    headers.insert("authorization", format!("Bearer {token}").parse()?);
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        bail!("{base} answered {}", response.status());
    }
    Ok(response)
}

/// Reads an SSE body to its end, noting when each `id:` line arrived.
async fn arrivals(body: &mut hyper::body::Incoming) -> anyhow::Result<Arrivals> {
    let mut arrivals = Arrivals::new();
    let mut line = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Some(data) = frame.data_ref() else { continue };
        let at = Instant::now();
        for &byte in data.iter() {
            if byte != b'\n' {
                line.push(byte);
                continue;
            }
            if let Some(seq) =
                line.strip_prefix(b"id: ").and_then(|id| std::str::from_utf8(id).ok()?.trim().parse().ok())
            {
                arrivals.insert(seq, at);
            }
            line.clear();
        }
    }
    Ok(arrivals)
}
