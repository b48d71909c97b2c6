use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = schedgen::cli::Cli::parse();
    match schedgen::commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("schedgen: error: {e:#}");
            ExitCode::from(schedgen::commands::EXIT_ERROR)
        }
    }
}
