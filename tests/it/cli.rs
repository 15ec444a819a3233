//! Bad input through the real binary: one clear line on stderr, a non-zero exit, no panic,
//! and nothing written that was not asked for.

use crate::common::*;

/// Input errors are caught before anything runs: stderr is exactly the one error line.
fn assert_only_line(run: &Run, code: i32, needle: &str) {
    assert_one_line_failure(run, code, needle);
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_get_one_line_and_a_nonzero_exit() {
    let w = Workdir::new();
    let url = "http://127.0.0.1:9";
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["import-api", "ticks", "AAPL", "2024-01-02", "2024-01-03"],
            2,
            "invalid value 'ticks' for '<KIND>'",
        ),
        (
            &["import-api", "quotes", "AAPL", "2024-01-02"],
            2,
            "missing END: expected SYMBOLS START END (or START END with --symbols-file)",
        ),
        (
            &["import-api", "quotes", "AAPL", "2024-1-2", "2024-01-03"],
            2,
            "START \"2024-1-2\" is not a valid date or timestamp",
        ),
        (
            &["import-api", "quotes", "AAPL", "2024-02-30", "2024-03-01"],
            2,
            "START \"2024-02-30\" is not a valid date or timestamp: no such date",
        ),
        (
            &[
                "import-api",
                "quotes",
                "AAPL",
                "2024-01-02",
                "2024-01-02T25:00:00Z",
            ],
            2,
            "END \"2024-01-02T25:00:00Z\" is not a valid date or timestamp: no such time of day",
        ),
        (
            &["import-api", "quotes", "AAPL", "2024-01-05", "2024-01-04"],
            2,
            "END 2024-01-04 is before START 2024-01-05",
        ),
        (
            &["import-api", "quotes", "AA$PL", "2024-01-02", "2024-01-03"],
            2,
            "symbol \"AA$PL\" contains '$', which no ticker has",
        ),
        (
            &[
                "import-api",
                "quotes",
                "AAPL",
                "2024-01-02",
                "2024-01-03",
                "--batch-size",
                "0",
            ],
            2,
            "invalid batch_size \"0\" from flag --batch-size: must be between 1 and 1000000",
        ),
        (
            &[
                "import-api",
                "quotes",
                "AAPL",
                "2024-01-02",
                "2024-01-03",
                "--feed",
                "nasdaq",
            ],
            2,
            "invalid feed \"nasdaq\" from flag --feed: must be sip, iex, otc or boats",
        ),
        (
            &[
                "import-api",
                "quotes",
                "AAPL",
                "2024-01-02",
                "2024-01-03",
                "--api-url",
                "data.alpaca.markets",
            ],
            2,
            "invalid api_url \"data.alpaca.markets\" from flag --api-url",
        ),
        (
            &[
                "import-api",
                "quotes",
                "AAPL",
                "2024-01-02",
                "2024-01-03",
                "--database-url",
                "mysql://x/y",
                "--api-url",
                url,
            ],
            2,
            "invalid database_url \"mysql://x/y\" from flag --database-url: unsupported database",
        ),
    ];
    for (args, code, needle) in cases {
        let run = w.run(args).await;
        assert_only_line(&run, *code, needle);
    }
    assert!(
        !w.path().join("data/market.db").exists(),
        "no database for rejected input"
    );
}

/// Usage errors are exit 2 in every command: a bad symbol, date, range, timeframe,
/// adjustment or cutoff reads the same way whether it is given to import-api,
/// load-historical or archive, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_in_every_command() {
    let w = Workdir::new();
    let url = "http://127.0.0.1:9";
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "import-api",
                "quotes",
                "AA$PL",
                "2024-01-02",
                "2024-01-03",
                "--api-url",
                url,
            ],
            "SYMBOLS: symbol \"AA$PL\" contains '$'",
        ),
        (
            &[
                "load-historical",
                "quotes",
                "AA$PL",
                "2024-01-02",
                "2024-01-03",
            ],
            "SYMBOLS: symbol \"AA$PL\" contains '$'",
        ),
        (
            &["archive", "quotes", "AA$PL", "--older-than", "30d"],
            "SYMBOL: symbol \"AA$PL\" contains '$'",
        ),
        (
            &[
                "import-api",
                "trades",
                "AAPL",
                "2024-13-01",
                "2024-01-03",
                "--api-url",
                url,
            ],
            "START \"2024-13-01\" is not a valid date or timestamp",
        ),
        (
            &[
                "load-historical",
                "trades",
                "AAPL",
                "2024-13-01",
                "2024-01-03",
            ],
            "START \"2024-13-01\" is not a valid date or timestamp",
        ),
        (
            &[
                "load-historical",
                "quotes",
                "AAPL",
                "2024-01-05",
                "2024-01-04",
            ],
            "END 2024-01-04 is before START 2024-01-05",
        ),
        (
            &[
                "import-api",
                "bars",
                "AAPL",
                "2024-01-02",
                "2024-01-03",
                "--timeframe",
                "2Min",
                "--api-url",
                url,
            ],
            "invalid --timeframe \"2Min\": must be 1Min, 5Min, 15Min, 1Hour or 1Day",
        ),
        (
            &[
                "load-historical",
                "bars",
                "AAPL",
                "2024-01-02",
                "2024-01-03",
                "--timeframe",
                "1Min",
                "--adjustment",
                "none",
            ],
            "invalid --adjustment \"none\": must be raw, split, dividend or all",
        ),
        (
            &["archive", "bars", "AAPL", "--older-than", "30d"],
            "bars need --timeframe 1Min|5Min|15Min|1Hour|1Day",
        ),
        (
            &[
                "archive",
                "trades",
                "AAPL",
                "--older-than",
                "30d",
                "--timeframe",
                "1Min",
            ],
            "--timeframe applies to bars only",
        ),
        (
            &["archive", "quotes", "AAPL", "--older-than", "soon"],
            "--older-than \"soon\": expected a number of days like 30d, or a date YYYY-MM-DD",
        ),
        (
            &[
                "import-api",
                "quotes",
                "AAPL",
                "2024-01-02",
                "2024-01-03",
                "--aggregate",
                "2d",
                "--api-url",
                url,
            ],
            "aggregate width \"2d\" has unknown unit \"d\"",
        ),
        (
            &[
                "import-api",
                "trades",
                "AAPL",
                "2024-01-02",
                "2024-01-03",
                "--sample",
                "10",
                "--api-url",
                url,
            ],
            "--nbbo-changes, --sample and --aggregate thin quotes; they do not apply to trades",
        ),
        (
            &[
                "import-api",
                "quotes",
                "AAPL",
                "2024-01-02",
                "2024-01-03",
                "--sample",
                "10",
                "--format",
                "parquet",
                "--api-url",
                url,
            ],
            "cannot be combined with format parquet",
        ),
        (
            &["load-historical", "quotes", ",", "2024-01-02", "2024-01-03"],
            "SYMBOLS is empty: name at least one symbol",
        ),
    ];
    for (args, needle) in cases {
        let run = w.run(args).await;
        assert_only_line(&run, 2, needle);
    }
    assert!(
        !w.path().join("data").exists(),
        "nothing written for rejected input"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_name_both_variables() {
    let w = Workdir::new();
    let mut cmd = w.command(&["import-api", "quotes", "AAPL", "2024-01-02", "2024-01-03"]);
    cmd.env_remove("APCA_API_SECRET_KEY");
    let run = w.run_cmd(cmd).await;
    assert_only_line(
        &run,
        1,
        "missing Alpaca credentials: set APCA_API_KEY_ID and APCA_API_SECRET_KEY (APCA_API_SECRET_KEY not set)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_is_retried_then_reported() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let w = Workdir::new();
    let url = format!("http://127.0.0.1:{port}");
    let run = w
        .import(
            &url,
            "AAPL",
            "2024-01-02",
            "2024-01-03",
            &["--max-attempts", "2"],
        )
        .await;
    assert_one_line_failure(&run, 1, "gave up after 2 attempts over");
    assert!(
        run.stderr.contains(&format!("cannot connect to {url}")),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_database_path_is_reported() {
    let w = Workdir::new();
    std::fs::write(w.path().join("not-a-folder"), "x").unwrap();
    let run = w
        .run(&[
            "import-api",
            "quotes",
            "AAPL",
            "2024-01-02",
            "2024-01-03",
            "--api-url",
            "http://127.0.0.1:9",
            "--database-url",
            "not-a-folder/market.db",
        ])
        .await;
    assert_only_line(&run, 1, "cannot create the database folder not-a-folder");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_explains_the_new_york_session() {
    let w = Workdir::new();
    let run = w.run(&["import-api", "--help"]).await;
    assert_eq!(run.code, Some(0));
    assert!(
        run.stdout.contains("04:00-20:00 America/New_York"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("[env: BULK_IMPORT_BATCH_SIZE] [default: 10000]"),
        "{}",
        run.stdout
    );
}

#[test]
fn every_setting_is_documented() {
    let root = env!("CARGO_MANIFEST_DIR");
    // The reference pages are generated from the same table (`cargo xtask docs`; CI checks
    // they are current): each setting is on them, and on `--help`.
    let readme = std::fs::read_to_string(format!("{root}/docs/reference/settings.md")).unwrap()
        + &std::fs::read_to_string(format!("{root}/docs/reference/environment.md")).unwrap();
    let help = {
        let mut cmd = data::cli::command();
        let import = cmd.find_subcommand_mut("import-api").unwrap();
        import.render_long_help().to_string()
    };
    for key in data::config::KEYS {
        for text in [key.env, key.flag, key.name] {
            assert!(
                readme.contains(&format!("`{text}`")),
                "docs/reference does not document `{text}`"
            );
        }
        assert!(help.contains(key.env), "--help does not name {}", key.env);
        assert!(help.contains(key.flag), "--help does not list {}", key.flag);
    }
    for var in data::config::SECRET_ENVS
        .iter()
        .chain(&["DATA_LOG", "DATA_CONFIG"])
    {
        assert!(
            readme.contains(&format!("`{var}`")),
            "docs/reference does not document {var}"
        );
    }
}

/// Every command's --help ends with examples of that command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_help_ends_with_an_example() {
    let w = Workdir::new();
    for &cmd in COMMANDS {
        let mut args = cmd.to_vec();
        args.push("--help");
        let run = w.run(&args).await;
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
        let text = run.stdout.trim_end();
        let tail = text.rsplit("Examples:").next().unwrap_or_default();
        assert!(
            text.contains("Examples:")
                && tail.lines().all(|l| l.trim().is_empty()
                    || l.trim().starts_with("data ")
                    || l.trim().starts_with("BULK_")),
            "{args:?} --help does not end with examples:\n{text}"
        );
        assert!(
            tail.contains(&format!("data {}", cmd.join(" "))),
            "{args:?}: {tail}"
        );
    }
}

/// `--version` names the build; `completions` prints scripts the shells take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_names_the_build_and_completions_are_generated() {
    let w = Workdir::new();
    let run = w.run(&["--version"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let version = run.stdout.trim();
    assert!(
        version.starts_with(&format!("data {} (", env!("CARGO_PKG_VERSION")))
            && (version.contains("(commit ") || version.contains("(unknown build)")),
        "{version}"
    );
    for (shell, marker) in [
        ("bash", "complete -F _data"),
        ("zsh", "#compdef data"),
        ("fish", "complete -c data"),
    ] {
        let run = w.run(&["completions", shell]).await;
        assert_eq!(run.code, Some(0), "{shell}: {}", run.stderr);
        assert!(
            run.stdout.contains(marker),
            "{shell}: {}",
            &run.stdout[..200.min(run.stdout.len())]
        );
        for sub in ["import-api", "load-historical", "sync", "status"] {
            assert!(run.stdout.contains(sub), "{shell} misses {sub}");
        }
    }
    let bad = w.run(&["completions", "tcsh"]).await;
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    if std::process::Command::new("bash")
        .arg("--version")
        .output()
        .is_ok()
    {
        let script = w.path().join("data.bash");
        std::fs::write(&script, w.run(&["completions", "bash"]).await.stdout).unwrap();
        let ok = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("source {} && complete -p data", script.display()))
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }
}
