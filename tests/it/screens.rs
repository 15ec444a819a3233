//! Snapshots of the text users read (insta; `tests/it/snapshots/`): every command's
//! `--help`, the one-line errors and their exit codes, `config show`, a `--dry-run`, and
//! `status` as a table and as JSON. Ports, the working folder and times are filtered out.
//! A change to any of them shows up as a failed test with the difference; accept it with
//! `INSTA_UPDATE=always cargo test --test it screens` (or `cargo insta review`) and commit
//! the `.snap` files with the change that made it.

use crate::common::{small, standin, Run, Workdir, COMMANDS};

/// The settings every snapshot here is taken with: what changes from run to run filtered.
fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[port]");
    s.add_filter(r"\b\d+(\.\d+)?(s|ms)\b", "[time]");
    s.add_filter(r"\b\d+ rows/s\b", "[rate]");
    s.set_prepend_module_to_snapshot(false);
    s
}

/// A run as a user sees it: the command, its exit code, and what it printed.
fn shown(w: &Workdir, args: &[&str], run: &Run) -> String {
    let dir = w.path().display().to_string();
    let code = run.code.map_or("killed".to_string(), |c| c.to_string());
    let line: Vec<&str> = ["data"].iter().chain(args).copied().collect();
    let mut text = format!("$ {}\nexit {code}\n", line.join(" "));
    if !run.stdout.is_empty() {
        text.push_str(&format!("--- stdout\n{}", run.stdout));
    }
    if !run.stderr.is_empty() {
        text.push_str(&format!("--- stderr\n{}", run.stderr));
    }
    text.replace(&dir, "[dir]")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commands_help() {
    let w = Workdir::new();
    for cmd in std::iter::once(&[][..]).chain(COMMANDS.iter().copied()) {
        let mut args = cmd.to_vec();
        args.push("--help");
        let run = w.run(&args).await;
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
        let name = match cmd.is_empty() {
            true => "help".to_string(),
            false => format!("help_{}", cmd.join("_").replace('-', "_")),
        };
        settings().bind(|| insta::assert_snapshot!(name, run.stdout));
    }
}

/// `data` alone: the help on stderr, and the usage exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_alone_prints_the_help_and_exits_2() {
    let w = Workdir::new();
    let run = w.run(&[]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("Usage: data [OPTIONS] <COMMAND>"),
        "{}",
        run.stderr
    );
    settings().bind(|| insta::assert_snapshot!("data_alone", shown(&w, &[], &run)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_errors_and_their_exit_codes() {
    let w = Workdir::new();
    let cases: &[&[&str]] = &[
        &["import-api", "ticks", "AAPL", "2024-01-02", "2024-01-03"],
        &["import-api", "quotes", "AAPL", "2024-02-30", "2024-03-01"],
        &["import-api", "quotes", "AAPL", "2024-03-05", "2024-03-01"],
        &[
            "import-api",
            "quotes",
            "AAPL",
            "2024-01-02",
            "2024-01-03",
            "--batch-size",
            "0",
        ],
        &[
            "import-api",
            "quotes",
            "AAPL",
            "2024-01-02",
            "2024-01-03",
            "--format",
            "csv",
        ],
        &[
            "import-api",
            "quotes",
            "AAPL",
            "2024-01-02",
            "2024-01-03",
            "--database-url",
            "mysql://u:pw@h/db",
        ],
        &[
            "import-api",
            "quotes",
            "AAPL",
            "2024-01-02",
            "2024-01-03",
            "--historical-path",
            "ftp://h/x",
            "--format",
            "parquet",
        ],
        &[
            "import-api",
            "quotes",
            "AAPL",
            "2024-01-02",
            "2024-01-03",
            "--coordinate",
        ],
        &[
            "import-api",
            "bars",
            "AAPL",
            "2024-01-02",
            "2024-01-03",
            "--timeframe",
            "7Min",
        ],
        &["archive", "quotes", "AAPL", "--older-than", "yesterday"],
        &["status", "--json", "--html", "x.html"],
        &["status", "--api-url", "http://127.0.0.1:9"],
        &["completions", "tcsh"],
    ];
    let mut text = String::new();
    for args in cases {
        let run = w.run(args).await;
        assert!(
            run.stderr.lines().count() == 1 && run.stdout.is_empty(),
            "{args:?}: not one line: {}",
            run.stderr
        );
        text.push_str(&shown(&w, args, &run));
        text.push('\n');
    }
    // Without credentials: a failure (1), naming both variables.
    let args = ["import-api", "quotes", "AAPL", "2024-01-02", "2024-01-03"];
    let mut cmd = w.command(&args);
    cmd.env_remove("APCA_API_KEY_ID")
        .env_remove("APCA_API_SECRET_KEY");
    let run = w.run_cmd(cmd).await;
    text.push_str(&shown(&w, &args, &run));
    settings().bind(|| insta::assert_snapshot!("errors", text));
}

/// `today` and `now` as START and END: the market's day (New York's; UTC's for crypto) and
/// this instant, here the clock `DATA_TEST_NOW` sets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn today_and_now_are_dates_and_instants() {
    let w = Workdir::new();
    let mut text = String::new();
    for args in [
        ["import-api", "quotes", "AAPL", "today", "now", "--dry-run"],
        [
            "import-api",
            "quotes",
            "BTC/USD",
            "today",
            "today",
            "--dry-run",
        ],
        ["import-api", "quotes", "AAPL", "now", "today", "--dry-run"],
    ] {
        let mut cmd = w.command(&args);
        cmd.env(data::run::TEST_NOW_ENV, "2024-01-03T18:00:00Z");
        let run = w.run_cmd(cmd).await;
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
        text.push_str(&shown(&w, &args, &run));
    }
    settings().bind(|| insta::assert_snapshot!("today_and_now", text));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_show_says_where_each_value_comes_from() {
    let w = Workdir::new();
    std::fs::write(
        w.path().join("my.toml"),
        "batch_size = 20000\nfeed = \"iex\"\n",
    )
    .unwrap();
    let args = ["config", "show", "--rate-limit", "100"];
    let mut cmd = w.command(&args);
    cmd.env("DATA_CONFIG", "my.toml")
        .env("DATABASE_URL", "postgres://me:hunter2@db.example/market");
    let run = w.run_cmd(cmd).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
    settings().bind(|| insta::assert_snapshot!("config_show", shown(&w, &args, &run)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_and_status_of_a_small_import() {
    let s = standin(small(40)).await;
    let w = Workdir::new();
    let url = s.url();
    let import = |end: &'static str, dry: bool| {
        let mut args = vec!["import-api", "quotes", "AAPL,MSFT", "2024-01-02", end];
        args.extend(["--api-url", url.as_str()]);
        if dry {
            args.push("--dry-run");
        }
        args
    };
    let mut text = String::new();
    let args = import("2024-01-05", true);
    let run = w.run(&args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    text.push_str(&shown(&w, &args, &run));
    // Two of the four days imported: the dry run then names what is left.
    let run = w.run(&import("2024-01-03", false)).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let args = import("2024-01-05", true);
    let run = w.run(&args).await;
    text.push_str(&shown(&w, &args, &run));
    settings().bind(|| insta::assert_snapshot!("dry_run", text));

    for (name, args) in [
        ("status", vec!["status"]),
        ("status_json", vec!["status", "--json"]),
    ] {
        let run = w.run(&args).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        settings().bind(|| insta::assert_snapshot!(name, shown(&w, &args, &run)));
    }
}
