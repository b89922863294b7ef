//! Developer tasks: `cargo xtask regenerate [--check]` and `cargo xtask bench [options]`.

mod bench;
mod openapi30;
mod regenerate;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["regenerate"] => regenerate::run(false),
        ["regenerate", "--check"] => regenerate::run(true),
        ["bench", options @ ..] => {
            bench::Options::parse(options).and_then(|options| bench::run(&options)).map(|()| true)
        }
        _ => {
            eprintln!("usage: cargo xtask regenerate [--check]");
            eprintln!("       cargo xtask bench [--vs-litellm] [--postgres URL] [--rounds N] [--quick]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}
