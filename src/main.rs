//! The `pulldoctor` binary: parse the command line, run, map the result to an exit code.

#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match pulldoctor::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                pulldoctor::report::exit::USAGE
            } else {
                pulldoctor::report::exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match pulldoctor::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("pulldoctor: {e:#}");
            ExitCode::from(
                e.downcast_ref::<pulldoctor::UsageError>()
                    .map_or(pulldoctor::report::exit::INCOMPLETE, |_| {
                        pulldoctor::report::exit::USAGE
                    }),
            )
        }
    }
}
