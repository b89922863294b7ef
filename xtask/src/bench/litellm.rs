//! LiteLLM's proxy, pinned, in a virtualenv of its own under target/bench/, pointed at the
//! same mock as everything else. Later releases than 1.74.9 had compromised builds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use super::process::{Process, command, free_port};

const REQUIREMENTS: &str = "litellm[proxy]==1.74.9\nopenai<2\n";

/// Installs the pinned proxy once; reinstalls when the pins change.
pub fn install(out: &Path) -> anyhow::Result<PathBuf> {
    let venv = out.join("litellm-venv");
    let pins = venv.join("requirements.txt");
    if std::fs::read_to_string(&pins).is_ok_and(|installed| installed == REQUIREMENTS) {
        return Ok(venv);
    }
    eprintln!("installing LiteLLM's proxy into {}", venv.display());
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    let requirements = out.join("litellm-requirements.txt");
    std::fs::write(&requirements, REQUIREMENTS)?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements))?;
    std::fs::write(pins, REQUIREMENTS)?;
    Ok(venv)
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// Starts the proxy with one worker and every model routed to the mock; answers its base URL.
pub fn start(venv: &Path, work: &Path, mock_url: &str) -> anyhow::Result<(Process, String)> {
    let config = work.join("litellm.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: \"*\"\n    litellm_params:\n      model: \"openai/*\"\n      api_base: \"{mock_url}\"\n      api_key: \"sk-bench\"\n"
        ),
    )?;
    let port = free_port()?.to_string();
    let mut process = Process::spawn(
        "litellm",
        command(&venv.join("bin/litellm"))
            .args(["--config"])
            .arg(&config)
            .args(["--host", "127.0.0.1", "--port", &port, "--num_workers", "1"])
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .env("LITELLM_LOG", "ERROR")
            .stdout(std::process::Stdio::null())
            // It logs every request at INFO whatever LITELLM_LOG says; keep that off the terminal.
            .stderr(std::fs::File::create(work.join("litellm.log"))?),
    )?;
    let base = format!("http://127.0.0.1:{port}");
    process.wait_ready(&format!("{base}/health/liveliness"), Duration::from_secs(180))?;
    Ok((process, format!("{base}/v1")))
}
