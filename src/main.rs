//! The `churnseg` binary: parse the command line, run the command, print the error chain
//! and exit 0 (success), 2 (bad input or failure) or 3 (a health guard stopped the run); under
//! `--log-format json` the error is one JSON object on stderr.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = churnseg::cli::Cli::parse();
    let json = cli.log_format == churnseg::console::LogFormat::Json;
    match churnseg::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            let code = churnseg::cli::exit_code(&err);
            if json {
                let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
                let line = serde_json::json!({
                    "level": "error",
                    "message": err.to_string(),
                    "causes": causes,
                    "exit_code": code,
                });
                eprintln!("{line}");
            } else {
                eprintln!("error: {err}");
                for cause in err.chain().skip(1) {
                    eprintln!("  caused by: {cause}");
                }
            }
            ExitCode::from(code)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
