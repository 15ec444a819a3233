//! Output that fits a terminal, tested through a pseudo-terminal (util-linux `script`): the
//! bar, warnings and the end-of-run line on the terminal, the per-batch lines only in the log file
//! (and on the terminal with `-v`); `-q` prints errors only; no colour codes, so `NO_COLOR`
//! holds whatever it is.

use crate::common::{small, standin, Workdir, KEY, SECRET};

/// Runs `data ARGS` in `w` on a pseudo-terminal; what the terminal showed, and the exit code.
fn on_a_terminal(w: &Workdir, args: &[&str], env: &[(&str, &str)]) -> (String, Option<i32>) {
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_data"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect();
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-q", "-e", "-c", &quoted.join(" "), "/dev/null"])
        .current_dir(w.path())
        .env("APCA_API_KEY_ID", KEY)
        .env("APCA_API_SECRET_KEY", SECRET)
        .env("BULK_IMPORT_RATE_LIMIT", "0")
        .env_remove("DATA_LOG")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .expect("util-linux `script` runs commands on a pseudo-terminal");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

/// Whether `text` holds an SGR (colour or style) escape: ESC [ digits/semicolons m.
fn has_colour(text: &str) -> bool {
    text.split('\u{1b}').skip(1).any(|rest| {
        rest.strip_prefix('[').is_some_and(|r| {
            let code: String = r
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ';')
                .collect();
            r[code.len()..].starts_with('m')
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_shows_the_bar_and_the_summary_and_the_log_file_every_batch() {
    let s = standin(small(20_000)).await;
    let url = s.url();
    let import = [
        "import-api",
        "quotes",
        "AAPL",
        "2024-01-02",
        "2024-01-03",
        "--api-url",
        &url,
        "--batch-size",
        "5000",
    ];
    let w = Workdir::new();
    let (shown, code) = on_a_terminal(&w, &import, &[]);
    assert_eq!(code, Some(0), "{shown}");
    // The end is one line a person reads; the detailed [DONE] line is in the log file.
    assert!(
        shown.contains("\u{2713} 40,000 quotes of AAPL in "),
        "{shown}"
    );
    assert!(!shown.contains("[DONE]"), "{shown}");
    assert!(w.log().contains("[DONE] AAPL quotes: 40000 rows"));
    assert!(
        !shown.contains("[DB] Batch"),
        "batch lines stay off the terminal: {shown}"
    );
    assert!(shown.contains("days"), "the bar: {shown}");
    assert_eq!(w.log().matches("[DB] Batch").count(), 8, "{}", w.log());
    assert!(!has_colour(&shown), "{shown:?}");

    // -v: the batch lines on the terminal too.
    let w = Workdir::new();
    let mut verbose = import.to_vec();
    verbose.push("-v");
    let (shown, code) = on_a_terminal(&w, &verbose, &[("NO_COLOR", "1")]);
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(shown.matches("[DB] Batch").count(), 8, "{shown}");
    assert!(!has_colour(&shown), "{shown:?}");

    // -q: nothing but errors.
    let w = Workdir::new();
    let mut quiet = import.to_vec();
    quiet.insert(0, "-q");
    let (shown, code) = on_a_terminal(&w, &quiet, &[]);
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(shown.trim(), "", "quiet: {shown:?}");
    assert_eq!(
        w.log().matches("[DB] Batch").count(),
        8,
        "the log file has everything"
    );
    let (shown, code) = on_a_terminal(
        &w,
        &[
            "-q",
            "import-api",
            "quotes",
            "AAPL",
            "2024-01-05",
            "2024-01-02",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown
            .trim()
            .starts_with("error: END 2024-01-02 is before START"),
        "{shown:?}"
    );
}
