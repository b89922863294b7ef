use std::io::IsTerminal;
use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use ingram_core::auth::TokenKind;
use ingram_core::bootstrap::{self, Chosen};
use ingram_core::crypto::MasterKey;
use ingram_core::db;
use ingram_core::domain::tokens;
use ingram_core::egress::EgressPolicy;
use ingram_core::ids::{ProjectId, SmithId};
use ingram_core::settings::CapacityLimits;
use ingram_core::settings::Settings;
use ingram_server::AppState;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "ingram", version, about = "The Ingram API server")]
struct Cli {
    /// SQLite (`sqlite://path?mode=rwc`) or PostgreSQL (`postgres://…`) URL.
    #[arg(long, env = "INGRAM_DATABASE_URL", default_value = db::DEFAULT_DATABASE_URL, global = true)]
    database_url: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve {
        #[arg(long, env = "INGRAM_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Manage tokens from the command line.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a token and print its secret.
    Create {
        #[arg(long)]
        project: String,
        #[arg(long, value_enum)]
        kind: CliTokenKind,
        /// The smith a smith token acts for.
        #[arg(long)]
        smith: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum CliTokenKind {
    TenantAdmin,
    Smith,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr so that stdout carries only what a command prints (a minted secret).
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("INGRAM_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let db = db::connect(&cli.database_url).await.with_context(|| format!("opening {}", cli.database_url))?;
    match cli.command.unwrap_or(Command::Serve { listen: "127.0.0.1:8080".parse()? }) {
        Command::Serve { listen } => serve(db, listen).await,
        Command::Token { command: TokenCommand::Create { project, kind, smith, name } } => {
            create_token(db, project, kind, smith, name).await
        }
    }
}

async fn serve(db: sea_orm::DatabaseConnection, listen: SocketAddr) -> anyhow::Result<()> {
    let chosen = Chosen {
        org_key: std::env::var("INGRAM_ORG_KEY").ok().filter(|key| !key.is_empty()),
        admin_token: std::env::var("INGRAM_ADMIN_TOKEN").ok().filter(|token| !token.is_empty()),
    };
    let boot = bootstrap::ensure(&db, chosen).await.map_err(|err| anyhow::anyhow!(err.message))?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    if boot.created {
        println!("Created organization {} with default project {}.", boot.organization_id, boot.project_id);
    }
    if let Some(org_key) = &boot.new_org_key {
        println!("Org key (shown once, manages projects): {org_key}");
    }
    if let Some(admin_token) = &boot.new_admin_token {
        println!("Tenant-admin token for {} (shown once): {admin_token}", boot.project_id);
        println!(
            "Try: curl -s http://{listen}/v1/smiths -H 'Authorization: Bearer {admin_token}' -H 'Content-Type: application/json' -d '{{\"external_id\":\"user_123\"}}'"
        );
    }
    let state = AppState::new(db, settings_from_env()?).map_err(|err| anyhow::anyhow!(err.message))?;
    ingram_server::spawn_upkeep(state.clone());
    state.engine.spawn_upkeep();
    state.engine.spawn_listener();
    tracing::info!(%listen, "serving");
    ingram_server::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

fn settings_from_env() -> anyhow::Result<Settings> {
    let data_dir = std::env::var("INGRAM_DATA_DIR").unwrap_or_else(|_| ".".into());
    let configured = std::env::var("INGRAM_MASTER_KEY").ok();
    let (master_key, created) = MasterKey::load_or_create(configured.as_deref(), std::path::Path::new(&data_dir))
        .with_context(|| format!("reading the master key in {data_dir}"))?;
    if created {
        tracing::warn!(
            "INGRAM_MASTER_KEY is not set: generated {}/{}. Provider keys are sealed with it; back it up, or set INGRAM_MASTER_KEY.",
            data_dir,
            ingram_core::crypto::KEY_FILE
        );
    }
    let millis = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let egress = EgressPolicy::parse(&std::env::var("INGRAM_EGRESS_ALLOW").unwrap_or_default())
        .map_err(|err| anyhow::anyhow!("INGRAM_EGRESS_ALLOW: {err}"))?;
    Ok(Settings {
        master_key,
        fallback_keys: Settings::fallback_keys_from_env(),
        offline_token_delay: std::time::Duration::from_millis(millis("INGRAM_OFFLINE_TOKEN_DELAY_MS", 20)),
        run_lease: std::time::Duration::from_millis(millis("INGRAM_RUN_LEASE_MS", 15_000)),
        egress,
        run_deadline: std::time::Duration::from_secs(millis(
            "INGRAM_RUN_DEADLINE_SECS",
            ingram_core::settings::DEFAULT_RUN_DEADLINE.as_secs(),
        )),
        idempotency_lease: ingram_core::settings::DEFAULT_IDEMPOTENCY_LEASE,
        approval_ttl: std::time::Duration::from_secs(millis(
            "INGRAM_APPROVAL_TTL_SECS",
            ingram_core::domain::approvals::DEFAULT_TTL.as_secs(),
        )),
        capacity: {
            let defaults = CapacityLimits::default();
            let cap = |name: &str, default: u32| u32::try_from(millis(name, u64::from(default))).unwrap_or(default);
            CapacityLimits {
                active_runs: cap("INGRAM_PROJECT_MAX_ACTIVE_RUNS", defaults.active_runs),
                queued_runs: cap("INGRAM_PROJECT_MAX_QUEUED_RUNS", defaults.queued_runs),
                streams: cap("INGRAM_PROJECT_MAX_STREAMS", defaults.streams),
            }
        },
    })
}

async fn create_token(
    db: sea_orm::DatabaseConnection,
    project: String,
    kind: CliTokenKind,
    smith: Option<String>,
    name: Option<String>,
) -> anyhow::Result<()> {
    let fail = |err: ingram_core::Error| anyhow::anyhow!(err.message);
    let kind = match kind {
        CliTokenKind::TenantAdmin => TokenKind::TenantAdmin,
        CliTokenKind::Smith => TokenKind::Smith,
    };
    match (kind, &smith) {
        (TokenKind::Smith, None) => anyhow::bail!("a smith token needs --smith <id>"),
        (TokenKind::TenantAdmin, Some(_)) => anyhow::bail!("--smith applies to smith tokens only"),
        _ => {}
    }
    let project = ProjectId::from(project);
    let grant = tokens::Grant { kind, smith_id: smith.map(SmithId::from), scopes: None, name };
    let minted = tokens::grant(&db, tokens::Grantor::Operator { project_id: &project }, grant).await.map_err(fail)?;
    println!("{}", minted.secret);
    eprintln!("token {} ({}) for project {project}", minted.record.id, kind.as_str());
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
