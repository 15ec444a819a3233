//! Settings, resolved in one place with precedence flag > environment > file > default.
//!
//! Every setting is a row of [`KEYS`]: its TOML key, environment variable, flag and default.
//! [`resolve`] reads each from the first place that has it, validates it there, and records
//! where it came from, so an invalid value is reported with its key and its source, and
//! `data config show` can print the provenance of every value. Nothing downstream reads the
//! environment or the file again.

mod keys;

pub use keys::{Key, Scope, KEYS, SECRET_ENVS};

use data_core::model::Feed;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The settings file read when `--config` and `DATA_CONFIG` are not given (if it exists).
pub const DEFAULT_CONFIG_FILE: &str = "config/default.toml";
pub const CONFIG_ENV: &str = "DATA_CONFIG";

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(&'static str),
    Env(&'static str),
    File(PathBuf),
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Database,
    Parquet,
}

/// The settings flags, shared by `import-api` and `config show`. Values stay text here and
/// are validated by [`resolve`], so a bad flag, variable or file entry reads the same way.
#[derive(Debug, Clone, Default)]
pub struct SettingsArgs {
    /// `--config PATH`: the settings file.
    pub config: Option<PathBuf>,
    /// The settings given as flags, by [`Key::name`] (a switch given: `true`).
    pub flags: BTreeMap<&'static str, String>,
}

/// `--config`'s help (the one flag about settings that is not a setting).
const CONFIG_HELP: &str =
    "Settings file (TOML) [env: DATA_CONFIG] [default: config/default.toml, if present]";

impl SettingsArgs {
    fn flag(&self, name: &str) -> Option<String> {
        self.flags.get(name).cloned()
    }

    /// `key`'s flag as clap takes it: its value name, and its help with the variable and
    /// the default.
    fn arg(key: &'static Key) -> clap::Arg {
        let arg = clap::Arg::new(key.name).long(&key.flag[2..]);
        match key.value {
            "" => arg
                .action(clap::ArgAction::SetTrue)
                .help(format!("{} [env: {}]", key.help, key.env)),
            value => arg.value_name(value).help(format!(
                "{} [env: {}] [default: {}]",
                key.help, key.env, key.default
            )),
        }
    }
}

impl SettingsArgs {
    /// `cmd` with `--config` and the flags of the settings in `scopes`.
    fn augment(cmd: clap::Command, scopes: &[Scope]) -> clap::Command {
        let config = clap::Arg::new("config")
            .long("config")
            .value_name("PATH")
            .value_parser(clap::value_parser!(PathBuf))
            .help(CONFIG_HELP);
        KEYS.iter()
            .filter(|key| scopes.contains(&key.scope))
            .fold(cmd.arg(config), |cmd, key| cmd.arg(Self::arg(key)))
    }

    /// Takes the flags of the settings in `scopes` that `matches` has.
    fn update(&mut self, matches: &clap::ArgMatches, scopes: &[Scope]) {
        if let Some(path) = matches.get_one::<PathBuf>("config") {
            self.config = Some(path.clone());
        }
        for key in KEYS.iter().filter(|key| scopes.contains(&key.scope)) {
            let value = match key.value {
                "" => matches.get_flag(key.name).then(|| "true".to_string()),
                _ => matches.get_one::<String>(key.name).cloned(),
            };
            if let Some(value) = value {
                self.flags.insert(key.name, value);
            }
        }
    }
}

/// Every scope: the flags of `import-api`, `sync` and `config show`.
const ALL: &[Scope] = &[Scope::Store, Scope::Import];

/// The settings' flags are made from [`KEYS`], so each setting is declared once.
impl clap::Args for SettingsArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        Self::augment(cmd, ALL)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment(cmd, ALL)
    }
}

impl clap::FromArgMatches for SettingsArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut args = SettingsArgs::default();
        args.update(matches, ALL);
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.update(matches, ALL);
        Ok(())
    }
}

/// The settings flags of a command that opens a store but asks nothing of the Alpaca API
/// (`load-historical`, `archive`, `status`): the [`Scope::Store`] ones. The others still
/// come from the environment or the settings file.
#[derive(Debug, Clone, Default)]
pub struct StoreSettingsArgs(pub SettingsArgs);

impl std::ops::Deref for StoreSettingsArgs {
    type Target = SettingsArgs;
    fn deref(&self) -> &SettingsArgs {
        &self.0
    }
}

impl clap::Args for StoreSettingsArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        SettingsArgs::augment(cmd, &[Scope::Store])
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        SettingsArgs::augment(cmd, &[Scope::Store])
    }
}

impl clap::FromArgMatches for StoreSettingsArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut args = SettingsArgs::default();
        args.update(matches, &[Scope::Store]);
        Ok(StoreSettingsArgs(args))
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update(matches, &[Scope::Store]);
        Ok(())
    }
}

/// The resolved, validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub batch_size: usize,
    pub skip_duplicates: bool,
    pub drop_indexes: bool,
    pub format: Format,
    /// The Parquet store: a folder or an S3 bucket's prefix.
    pub historical_path: data_storage::location::Location,
    pub database_url: String,
    pub log_file: PathBuf,
    pub api_url: String,
    pub trading_api_url: String,
    pub feed: Feed,
    /// Minutes before now that SIP data is asked up to.
    pub sip_delay_minutes: u64,
    pub max_attempts: u32,
    pub retry_base_ms: u64,
    pub request_timeout_secs: u64,
    pub rate_limit: u32,
    /// `None`: auto (adaptive).
    pub concurrency: Option<usize>,
    /// `None`: auto (the data type decides).
    pub symbols_per_request: Option<usize>,
    pub busy_timeout_secs: u64,
    /// Each setting's shown value (secrets redacted) and its source, in `KEYS` order.
    pub provenance: Vec<(&'static str, String, Source)>,
}

/// A setting that failed validation, or an unusable settings file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

fn parse_int<T: std::str::FromStr + PartialOrd + fmt::Display + Copy>(
    raw: &str,
    lo: T,
    hi: T,
) -> Result<T, String> {
    match raw.trim().parse::<T>() {
        Ok(v) if v >= lo && v <= hi => Ok(v),
        Ok(_) => Err(format!("must be between {lo} and {hi}")),
        Err(_) => Err(format!("must be a whole number between {lo} and {hi}")),
    }
}

/// A whole number from 1 to `hi`, or `auto` (`None`).
fn parse_auto(raw: &str, hi: usize) -> Result<Option<usize>, String> {
    if raw.trim().eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    parse_int(raw, 1usize, hi)
        .map(Some)
        .map_err(|e| format!("{e}, or auto"))
}

fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err("must be true or false".to_string()),
    }
}

/// Shows a URL without its password or secret-named parameters
/// ([`data_core::secrets::redact_url`]).
pub fn redact_url(url: &str) -> String {
    data_core::secrets::redact_url(url)
}

/// A TOML value as the text a flag or variable would carry.
fn toml_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

/// The TOML type a key takes, told by its default: `true`/`false` a boolean, a number an
/// integer, `auto` an integer or the string "auto", anything else a string. `None` when
/// `v` is of that type.
fn toml_type_mismatch(key: &Key, v: &toml::Value) -> Option<&'static str> {
    use toml::Value;
    let d = key.default;
    let (ok, expected) = if d == "true" || d == "false" {
        (matches!(v, Value::Boolean(_)), "a boolean (true or false)")
    } else if d.parse::<i64>().is_ok() {
        (matches!(v, Value::Integer(_)), "a whole number")
    } else if d == "auto" {
        (
            matches!(v, Value::Integer(_))
                || matches!(v, Value::String(s) if s.eq_ignore_ascii_case("auto")),
            "a whole number or \"auto\"",
        )
    } else {
        (matches!(v, Value::String(_)), "a string")
    };
    (!ok).then_some(expected)
}

/// A loaded settings file: its path and its keys.
type SettingsFile = (PathBuf, BTreeMap<String, toml::Value>);

/// Loads the settings file: `--config`, else `DATA_CONFIG`, else config/default.toml if it
/// exists. An explicitly named file must exist.
fn load_file(
    args: &SettingsArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<SettingsFile>, SettingsError> {
    let (path, explicit) = match (&args.config, env(CONFIG_ENV)) {
        (Some(p), _) => (p.clone(), Some("flag --config".to_string())),
        (None, Some(p)) if !p.is_empty() => (PathBuf::from(p), Some(format!("env {CONFIG_ENV}"))),
        _ => (PathBuf::from(DEFAULT_CONFIG_FILE), None),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(_) if explicit.is_none() && !path.exists() => return Ok(None),
        Err(e) => {
            return Err(SettingsError(format!(
                "cannot read settings file {} (from {}): {e}",
                path.display(),
                explicit.unwrap_or_else(|| "default location".into())
            )))
        }
    };
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let msg = e.message().to_string();
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        SettingsError(format!(
            "settings file {} is not valid TOML{}: {msg}",
            path.display(),
            line.map(|l| format!(" (line {l})")).unwrap_or_default()
        ))
    })?;
    for key in table.keys() {
        if !KEYS.iter().any(|k| k.name == key) {
            return Err(SettingsError(format!(
                "unknown key `{key}` in settings file {} (known keys: {})",
                path.display(),
                KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(Some((path, table.into_iter().collect())))
}

/// Resolves every setting: flag, else environment, else file, else default.
pub fn resolve(
    args: &SettingsArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, SettingsError> {
    // Every command resolves its settings first: from here on no line shows a credential.
    data_core::secrets::register_env(env);
    let file = load_file(args, env)?;
    let mut provenance = Vec::new();
    let mut raw = |name: &'static str| -> Result<(String, Source), SettingsError> {
        let key = KEYS
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| SettingsError(format!("internal: no setting named {name}")))?;
        let found = if let Some(v) = args.flag(name) {
            (v, Source::Flag(key.flag))
        } else if let Some(v) = env(key.env) {
            (v, Source::Env(key.env))
        } else if let Some((path, v)) = file.as_ref().and_then(|(p, t)| t.get(name).map(|v| (p, v)))
        {
            let text = toml_text(v).ok_or_else(|| {
                SettingsError(format!(
                    "invalid {name} in file {}: expected a string, number or boolean",
                    path.display()
                ))
            })?;
            if let Some(expected) = toml_type_mismatch(key, v) {
                return Err(SettingsError(format!(
                    "invalid {name} in file {}: expected {expected}, found {} (write {name} = {})",
                    path.display(),
                    v.type_str(),
                    match expected {
                        "a string" => format!("{:?}", key.default),
                        _ => key.default.to_string(),
                    }
                )));
            }
            (text, Source::File(path.clone()))
        } else {
            (key.default.to_string(), Source::Default)
        };
        let shown = if matches!(name, "database_url" | "api_url" | "trading_api_url") {
            // Whatever its source, a password in a URL is hidden from every line from now.
            data_core::secrets::register_url(&found.0);
            redact_url(&found.0)
        } else {
            found.0.clone()
        };
        provenance.push((name, shown, found.1.clone()));
        Ok(found)
    };
    fn check<T>(
        name: &str,
        (raw, source): (String, Source),
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, SettingsError> {
        parse(&raw).map_err(|why| {
            let shown = redact_url(&raw);
            SettingsError(format!("invalid {name} {shown:?} from {source}: {why}"))
        })
    }
    // `setting!(name, parse)`: the setting's text, wherever it came from, parsed; `int!`
    // for a whole number in a range.
    macro_rules! setting {
        ($name:literal, $parse:expr) => {
            check($name, raw($name)?, $parse)?
        };
    }
    macro_rules! int {
        ($name:literal, $lo:expr, $hi:expr) => {
            setting!($name, |r| parse_int(r, $lo, $hi))
        };
    }
    let batch_size = int!("batch_size", 1usize, 1_000_000);
    let skip_duplicates = setting!("skip_duplicates", parse_bool);
    let drop_indexes = setting!("drop_indexes", parse_bool);
    let format = setting!("format", |r| match r.trim() {
        "database" => Ok(Format::Database),
        "parquet" => Ok(Format::Parquet),
        _ => Err("must be database or parquet".to_string()),
    });
    // Parsed once the retry settings are known (an object store's requests follow them).
    let historical_raw = raw("historical_path")?;
    let database_url = setting!("database_url", database_url_of);
    let log_file = setting!("log_file", non_empty).into();
    let http_url = |example: &'static str| {
        move |r: &str| {
            let u = reqwest::Url::parse(r.trim_end_matches('/')).map_err(|e| e.to_string())?;
            if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
                return Err(format!("expected http(s)://host[:port], e.g. {example}"));
            }
            Ok(r.trim_end_matches('/').to_string())
        }
    };
    let api_url = setting!("api_url", http_url("https://data.alpaca.markets"));
    let trading_api_url = setting!(
        "trading_api_url",
        http_url("https://paper-api.alpaca.markets")
    );
    let feed = setting!("feed", |r| {
        Feed::parse(r.trim())
            .filter(|f| Feed::STOCKS.contains(f))
            .ok_or_else(|| "must be sip, iex, otc or boats".to_string())
    });
    let sip_delay_minutes = int!("sip_delay", 0u64, 7 * 24 * 60);
    let max_attempts = int!("max_attempts", 1u32, 100);
    let retry_base_ms = int!("retry_base_ms", 0u64, 60_000);
    let request_timeout_secs = int!("request_timeout", 1u64, 3600);
    let rate_limit = int!("rate_limit", 0u32, 1_000_000);
    let concurrency = setting!("concurrency", |r| parse_auto(r, 64));
    let symbols_per_request = setting!("symbols_per_request", |r| parse_auto(r, 100));
    let retry = data_core::retry::RetryPolicy {
        max_attempts,
        base_delay: std::time::Duration::from_millis(retry_base_ms),
        ..Default::default()
    };
    let historical_path = check("historical_path", historical_raw, |r| {
        data_storage::location::Location::parse(&non_empty(r)?, &retry)
    })?;
    let busy_timeout_secs = int!("busy_timeout", 0u64, 3600);
    for var in SECRET_ENVS {
        let (shown, source) = match env(var) {
            Some(v) if !v.trim().is_empty() => ("<redacted>".to_string(), Source::Env(var)),
            _ => ("<not set>".to_string(), Source::Default),
        };
        provenance.push((var, shown, source));
    }
    Ok(Settings {
        batch_size,
        skip_duplicates,
        drop_indexes,
        format,
        historical_path,
        database_url,
        log_file,
        api_url,
        trading_api_url,
        feed,
        sip_delay_minutes,
        max_attempts,
        retry_base_ms,
        request_timeout_secs,
        rate_limit,
        concurrency,
        symbols_per_request,
        busy_timeout_secs,
        provenance,
    })
}

/// A database URL we can use: `sqlite:PATH`, a file path, or a PostgreSQL URL that names
/// its database (without one, PostgreSQL would connect to the user's default database and
/// the import would create its tables there).
fn database_url_of(r: &str) -> Result<String, String> {
    let url = non_empty(r)?;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let after = &url[url.find("://").map_or(0, |i| i + 3)..];
        let (before_query, query) = after.split_once('?').unwrap_or((after, ""));
        let path = before_query.split_once('/').map_or("", |(_, p)| p);
        let named_in_query = query.split('&').any(|kv| {
            kv.split_once('=')
                .is_some_and(|(k, v)| k == "dbname" && !v.is_empty())
        });
        if path.trim_matches('/').is_empty() && !named_in_query {
            return Err(
                "a PostgreSQL URL must name its database: postgres://USER@HOST:PORT/DATABASE"
                    .to_string(),
            );
        }
        return Ok(url);
    }
    if url.contains("://") && !url.starts_with("sqlite:") {
        return Err(
            "unsupported database: use sqlite:PATH, a file path, or postgres://USER@HOST/DATABASE"
                .to_string(),
        );
    }
    Ok(url)
}

fn non_empty(r: &str) -> Result<String, String> {
    if r.trim().is_empty() {
        Err("must not be empty".to_string())
    } else {
        Ok(r.to_string())
    }
}

/// The process environment, for [`resolve`].
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Settings {
    /// `data config show`: one line per setting, its value and where it came from.
    pub fn show(&self) -> String {
        let (width, vwidth) = self
            .provenance
            .iter()
            .fold((0, 0), |(w, v), (name, value, _)| {
                (w.max(name.len()), v.max(value.len()))
            });
        self.provenance
            .iter()
            .map(|(name, value, source)| format!("{name:<width$} = {value:<vwidth$}  ({source})\n"))
            .collect()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_file
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.toml");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    /// The error resolving with `--config path`.
    fn config_error(path: PathBuf) -> String {
        let args = SettingsArgs {
            config: Some(path),
            ..Default::default()
        };
        resolve(&args, &env_of(&[])).unwrap_err().0
    }

    /// The error resolving with a settings file holding `text`, the file, and its folder.
    fn file_error(text: &str) -> (String, PathBuf, tempfile::TempDir) {
        let (dir, path) = file(text);
        (config_error(path.clone()), path, dir)
    }

    #[test]
    fn precedence_is_flag_then_env_then_file_then_default() {
        let (_d, p) = file("batch_size = 300\nfeed = \"iex\"\nmax_attempts = 3\n");
        let args = SettingsArgs {
            config: Some(p.clone()),
            flags: [("batch_size", "100".to_string())].into(),
        };
        let env = env_of(&[("BULK_IMPORT_BATCH_SIZE", "200"), ("APCA_API_FEED", "sip")]);
        let s = resolve(&args, &env).unwrap();
        assert_eq!(s.batch_size, 100);
        assert_eq!(s.feed, Feed::Sip);
        assert_eq!(s.max_attempts, 3);
        assert_eq!(s.request_timeout_secs, 60);
        let src = |n: &str| {
            s.provenance
                .iter()
                .find(|(k, _, _)| *k == n)
                .unwrap()
                .2
                .clone()
        };
        assert_eq!(src("batch_size"), Source::Flag("--batch-size"));
        assert_eq!(src("feed"), Source::Env("APCA_API_FEED"));
        assert_eq!(src("max_attempts"), Source::File(p));
        assert_eq!(src("request_timeout"), Source::Default);
    }

    #[test]
    fn invalid_values_name_key_and_source() {
        let env = env_of(&[("BULK_IMPORT_BATCH_SIZE", "0")]);
        let e = resolve(&SettingsArgs::default(), &env).unwrap_err().0;
        assert_eq!(e, "invalid batch_size \"0\" from env BULK_IMPORT_BATCH_SIZE: must be between 1 and 1000000");
        let (e, p, _d) = file_error("format = \"csv\"\n");
        assert_eq!(
            e,
            format!(
                "invalid format \"csv\" from file {}: must be database or parquet",
                p.display()
            )
        );
        let (e, p, _d) = file_error("batch_size = \n");
        assert!(
            e.starts_with(&format!(
                "settings file {} is not valid TOML (line 1)",
                p.display()
            )),
            "{e}"
        );
        let (e, _, _d) = file_error("batchsize = 5\n");
        assert!(
            e.starts_with("unknown key `batchsize` in settings file"),
            "{e}"
        );
        let e = config_error(PathBuf::from("/nonexistent/x.toml"));
        assert!(
            e.starts_with("cannot read settings file /nonexistent/x.toml (from flag --config)"),
            "{e}"
        );
    }

    #[test]
    fn the_documented_default_file_holds_exactly_the_defaults() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(DEFAULT_CONFIG_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        // It sets nothing (so `config show` says `default`, not `file`, for every key) ...
        let set: toml::Table = text.parse().unwrap();
        assert!(set.is_empty(), "{set:?}");
        // ... and lists every key commented out at its default, each in the type it takes.
        let listed: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| {
                l.split_once(" = ")
                    .is_some_and(|(k, _)| KEYS.iter().any(|key| key.name == k))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let table: toml::Table = listed.parse().unwrap();
        for key in KEYS {
            let v = table.get(key.name).unwrap();
            assert_eq!(toml_type_mismatch(key, v), None, "{}", key.name);
        }
        for key in KEYS {
            let v = table
                .get(key.name)
                .unwrap_or_else(|| panic!("{} missing", key.name));
            assert_eq!(toml_text(v).unwrap(), key.default, "{}", key.name);
            assert!(text.contains(key.env), "{} not documented", key.env);
        }
        assert_eq!(table.len(), KEYS.len());
    }

    #[test]
    fn secrets_and_passwords_are_redacted() {
        let env = env_of(&[
            ("APCA_API_KEY_ID", "AKSECRET"),
            ("APCA_API_SECRET_KEY", "shh"),
            ("DATABASE_URL", "postgres://u:hunter2@localhost/db"),
        ]);
        let shown = resolve(&SettingsArgs::default(), &env).unwrap().show();
        assert!(
            !shown.contains("AKSECRET") && !shown.contains("shh") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(
            shown.contains("APCA_API_KEY_ID     = <redacted>"),
            "{shown}"
        );
        assert!(
            shown.contains("postgres://u:<redacted>@localhost/db"),
            "{shown}"
        );
    }
}
