//! Snapshots of the text users read (insta; `tests/it/snapshots/`): every command's
//! `--help`, the one-line errors and their exit codes, `config show`, a `--dry-run`, and
//! `status` as a table and as JSON, and an import on a pseudo-terminal 80 and 60 columns
//! wide: its progress bar and its end-of-run line. Ports, the working folder and times are
//! filtered out.
//! A change to any of them shows up as a failed test with the difference; accept it with
//! `INSTA_UPDATE=always cargo test --test it screens` (or `cargo insta review`) and commit
//! the `.snap` files with the change that made it.

use crate::common::{small, standin, Run, Workdir, COMMANDS};
use data::standin::StandinConfig;

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

/// Runs `cmd` with stdin, stdout and stderr on a pseudo-terminal `cols` columns wide, as a
/// person's terminal: returns the exit code and every byte it drew.
fn in_a_terminal(cmd: tokio::process::Command, cols: u16) -> (Option<i32>, String) {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut main, mut side) = (-1, -1);
    let size = libc::winsize {
        ws_row: 24,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two new descriptors, owned here from now on.
    let rc = unsafe {
        libc::openpty(
            &mut main,
            &mut side,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both are open descriptors nothing else owns.
    let (main, side) = unsafe { (OwnedFd::from_raw_fd(main), OwnedFd::from_raw_fd(side)) };
    let mut cmd = cmd.into_std();
    cmd.stdin(side.try_clone().unwrap())
        .stdout(side.try_clone().unwrap())
        .stderr(side);
    let mut child = cmd.spawn().expect("run data");
    // Only the command holds the terminal's side now: once it exits, reading the main side
    // ends (EIO).
    drop(cmd);
    let mut drawn = Vec::new();
    let mut file = std::fs::File::from(main);
    let mut buf = [0u8; 65536];
    loop {
        match file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drawn.extend_from_slice(&buf[..n]),
        }
    }
    let code = child.wait().expect("wait for data").code();
    (code, String::from_utf8_lossy(&drawn).into_owned())
}

/// What a terminal shows of `drawn`, as the successive states of its lines: the text between
/// carriage returns and newlines, without the escape sequences that move the cursor.
fn frames(drawn: &str) -> Vec<String> {
    let mut frames = Vec::new();
    for piece in drawn.split(['\r', '\n']) {
        let mut text = String::new();
        let mut chars = piece.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // CSI: ESC [ parameters, then a final letter.
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                text.push(c);
            }
        }
        frames.push(text);
    }
    frames
}

/// An import as a terminal 80 and 60 columns wide shows it: every state of the progress bar
/// fits on one line and shows the days, rows, rate and ETA once each; the end is one line a
/// person reads. The bar's shape is the snapshot (its numbers vary with the machine's speed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_progress_bar_and_the_end_line_on_a_terminal() {
    let s = standin(StandinConfig {
        max_page: Some(1_000),
        ..small(10_000)
    })
    .await;
    let url = s.url();
    let mut text = String::new();
    for cols in [80u16, 60] {
        let w = Workdir::new();
        let args = [
            "import-api",
            "quotes",
            "AAPL",
            "2024-01-02",
            "2024-01-05",
            "--api-url",
            &url,
            "--batch-size",
            "1000",
        ];
        let mut cmd = w.command(&args);
        // Paced so the bar is drawn several times: 40 pages at 10 requests a second.
        cmd.env("BULK_IMPORT_RATE_LIMIT", "600");
        let (code, drawn) = tokio::task::spawn_blocking(move || in_a_terminal(cmd, cols))
            .await
            .unwrap();
        assert_eq!(code, Some(0), "{drawn}");
        let frames = frames(&drawn);
        let bars: Vec<&String> = frames.iter().filter(|f| f.contains(" rows ")).collect();
        assert!(bars.len() >= 2, "{drawn:?}");
        for bar in &bars {
            assert!(
                bar.chars().count() <= usize::from(cols),
                "wider than {cols}: {bar:?}"
            );
            for part in ["/4 days ", " rows ", "/s ", " ETA "] {
                assert_eq!(bar.matches(part).count(), 1, "{part:?} in {bar:?}");
            }
        }
        let last = bars.last().unwrap();
        let end: Vec<&String> = frames
            .iter()
            .filter(|f| f.starts_with('\u{2713}'))
            .collect();
        assert_eq!(end.len(), 1, "{drawn:?}");
        let end = regex_lite_time(end[0]);
        text.push_str(&format!("{cols} columns\n{}\n{end}\n", shape(last)));
    }
    settings().bind(|| insta::assert_snapshot!("terminal", text));
}

/// A bar's shape: its numbers as `#`, what fills the bar as `=`, and the requests/min tail
/// (as much of it as fits) cut.
fn shape(bar: &str) -> String {
    let mut out = String::new();
    let mut in_bar = false;
    let mut last_digit = false;
    for c in bar
        .split(" \u{b7} ")
        .next()
        .unwrap_or(bar)
        .trim_end()
        .chars()
    {
        match c {
            '[' => in_bar = true,
            ']' => in_bar = false,
            _ => {}
        }
        let shown = match c {
            '0'..='9' | ',' | '.' if !in_bar => '#',
            '>' | ' ' | '=' if in_bar => '=',
            other => other,
        };
        // `740k`, `9.30M`: the unit goes with the number.
        let unit = matches!(c, 'k' | 'M' | 'G') && last_digit;
        let repeated = shown == '#' && last_digit;
        if !unit && !repeated {
            out.push(shown);
        }
        last_digit = shown == '#' || (unit && last_digit);
    }
    out
}

/// The end line with its duration (`in 1.2 s`) as `in [time]`.
fn regex_lite_time(line: &str) -> String {
    match (line.find(" in "), line.find(" s")) {
        (Some(a), Some(b)) if a < b => format!("{} in [time]{}", &line[..a], &line[b + 2..]),
        _ => line.to_string(),
    }
}
