//! The `churnseg` binary: parse the command line, run the command, print the error chain
//! and exit 0, 2 (bad input or failure) or 3 (a health guard stopped the run).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = churnseg::cli::Cli::parse();
    match churnseg::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(churnseg::cli::exit_code(&err))
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
