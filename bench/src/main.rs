//! The benchmark's processes: `mock` is an OpenAI chat-completions upstream with a fixed
//! latency and paced SSE chunks; `load` drives one endpoint over keep-alive connections and
//! prints what it measured as one JSON line; `replicas` measures how late a second replica
//! streams a run's events.

mod load;
mod mock;
mod replicas;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ingram-bench", about = "The processes behind `cargo xtask bench`")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves `POST /v1/chat/completions`; prints its address, then serves until killed.
    Mock(mock::Options),
    /// Sends requests and prints a JSON summary of their latencies.
    Load(load::Options),
    /// Runs streams on one replica, follows them on another, and prints how late the second
    /// sent each event, as one JSON line.
    Replicas(replicas::Options),
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match Cli::parse().command {
        Command::Mock(options) => runtime.block_on(mock::serve(options)),
        Command::Load(options) => runtime.block_on(load::run(options)),
        Command::Replicas(options) => runtime.block_on(replicas::run(options)),
    }
}
