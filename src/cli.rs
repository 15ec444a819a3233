//! The command line: clap types, one-line errors and exit codes (0 ok, 1 failure, 2 usage,
//! 130 interrupted). Settings come from a flag, else its environment variable, else the
//! default shown in `--help`; nothing downstream re-reads the environment.

use crate::args::{Cli, Command, ConfigAction};
use crate::commands;
use crate::config::SettingsError;
use crate::run::{Outcome, EXIT_INTERRUPTED};
use std::process::ExitCode;

pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// Collapses clap's multi-line error text into one line.
fn one_line_usage_error(rendered: &str) -> String {
    let mut parts = Vec::new();
    for line in rendered.lines().map(str::trim) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if !line.is_empty() {
            parts.push(line);
        }
    }
    let mut msg = parts.join(" ");
    if !msg.starts_with("error:") {
        msg = format!("error: {msg}");
    }
    format!("{msg} (see --help)")
}

/// The multi-threaded runtime a command runs on, or the one-line error and exit code 1.
pub fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(crate::pipeline::lower_priority)
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_FAILURE)
        })
}

/// `data --version`: the package's version and the build (`commit abc123 2026-12-07`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("DATA_BUILD"), ")");

/// The command line, with the version of this build.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
        .version(VERSION)
        .propagate_version(true)
        .arg_required_else_help(true)
}

/// The program: parse, run, print one line on failure, return the exit code.
pub fn main() -> ExitCode {
    // Output piped into a reader that stops early (`data status | head`) ends the program
    // quietly, as it does other command-line tools, instead of a panic on the failed write.
    // SAFETY: restoring a signal's default disposition at start-up, before any thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    crate::store::sql::sqlite::configure_library();
    use clap::FromArgMatches;
    let cli = match command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                // `data` alone: the help, on stderr, as a usage error.
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    ExitCode::from(EXIT_USAGE)
                }
                _ => {
                    eprintln!("{}", one_line_usage_error(&e.render().to_string()));
                    ExitCode::from(EXIT_USAGE)
                }
            };
        }
    };
    crate::progress::set_verbosity(match (cli.quiet, cli.verbose) {
        (true, _) => crate::progress::Verbosity::Quiet,
        (_, true) => crate::progress::Verbosity::Verbose,
        _ => crate::progress::Verbosity::Normal,
    });
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::ImportApi(args) => commands::import_api::run(*args).await,
            Command::LoadHistorical(args) => commands::load_historical::run(args).await,
            Command::Archive(args) => commands::archive::run(args).await,
            Command::Export(args) => commands::export::run(args).await,
            Command::Sync(args) => commands::sync::run(args).await,
            Command::Status(args) => {
                let settings = crate::job::settings_of(&args.settings)?;
                let (holdings, notes) = crate::store::status::status(&settings).await?;
                if let Some(path) = &args.html {
                    let page = crate::coverage::to_html(&holdings, &notes);
                    std::fs::write(path, page).map_err(|e| {
                        anyhow::anyhow!("cannot write the page {}: {e}", path.display())
                    })?;
                }
                if args.json {
                    let json = crate::coverage::to_json(&holdings, &notes);
                    println!("{json:#}");
                } else {
                    print!("{}", crate::store::status::render(&holdings, &notes));
                    print!("{}", crate::coverage::render_strips(&holdings));
                }
                Ok(Outcome::Completed)
            }
            Command::Completions { shell } => {
                let mut cmd = command();
                clap_complete::generate(shell, &mut cmd, "data", &mut std::io::stdout());
                Ok(Outcome::Completed)
            }
            Command::Config {
                action: ConfigAction::Show(args),
            } => {
                let settings = crate::job::settings_of(&args)?;
                print!("{}", crate::secrets::scrub(&settings.show()));
                Ok(Outcome::Completed)
            }
        }
    });
    match result {
        Ok(Outcome::Completed) => {
            crate::progress::print_end_lines();
            ExitCode::SUCCESS
        }
        Ok(Outcome::Interrupted) => ExitCode::from(EXIT_INTERRUPTED),
        Err(e) => {
            let line = format!("{e:#}").replace(['\n', '\r'], " ");
            let line = crate::secrets::scrub(&line);
            crate::progress::log_error_to_file(&line);
            eprintln!("error: {line}");
            if e.downcast_ref::<SettingsError>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::from(EXIT_FAILURE)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_valid() {
        command().debug_assert();
    }

    #[test]
    fn usage_errors_become_one_line() {
        let err = command()
            .try_get_matches_from([
                "data",
                "import-api",
                "ticks",
                "AAPL",
                "2024-01-01",
                "2024-01-02",
            ])
            .unwrap_err();
        let line = one_line_usage_error(&err.render().to_string());
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with("error: invalid value 'ticks' for '<KIND>'"),
            "{line}"
        );
        assert!(
            line.contains("[possible values: quotes, trades, bars, corporate-actions]"),
            "{line}"
        );
    }
}
