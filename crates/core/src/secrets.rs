//! Secrets never reach a line we print or a file we write: one registry of the values to
//! hide and one scrubber every writer goes through (stderr, the log file, the final error
//! line, `config show`), plus one redaction of URLs used by every line that shows one.
//!
//! The registry is filled at start-up with the credentials the process holds (Alpaca's key
//! and secret, the cloud stores' keys, `PGPASSWORD`) and, once settings are resolved, with
//! the passwords inside the configured URLs, wherever they came from. A server that echoes
//! a request's headers or its URL back in an error body (proxies and WAFs do) is then
//! scrubbed before the text is shown.

use std::borrow::Cow;
use std::sync::RwLock;

/// What replaces a secret in any text we show.
pub(crate) const REDACTED: &str = "<redacted>";

/// Secrets shorter than this are not scrubbed from free text: replacing every `ab` in a
/// log line would mangle it and still hint at the value. Such a credential is not a real
/// one (Alpaca's keys are 20 and 40 characters, cloud keys longer).
const MIN_SECRET_LEN: usize = 4;

/// The environment variables that carry credentials: their values are scrubbed.
pub const SECRET_ENVS: &[&str] = &[
    "APCA_API_KEY_ID",
    "APCA_API_SECRET_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_CLIENT_SECRET",
    "PGPASSWORD",
];

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Adds a value to hide from every text shown from now on (and its percent-decoded form,
/// as a URL carries it). Short or empty values are ignored.
pub(crate) fn register(value: &str) {
    let value = value.trim();
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    let decoded = percent_decode(value);
    if let Ok(mut all) = SECRETS.write() {
        for v in [value.to_string(), decoded] {
            if v.len() >= MIN_SECRET_LEN && !all.contains(&v) {
                all.push(v);
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Registers the credentials of the process environment.
pub fn register_env(env: &dyn Fn(&str) -> Option<String>) {
    for var in SECRET_ENVS {
        if let Some(v) = env(var) {
            register(&v);
        }
    }
}

/// Registers the passwords a URL carries (its userinfo, and query parameters whose name
/// looks secret).
pub fn register_url(url: &str) {
    for value in url_secrets(url) {
        register(&value);
    }
}

/// `text` with every registered secret replaced by `<redacted>`.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let Ok(all) = SECRETS.read() else {
        return Cow::Borrowed(text);
    };
    let mut out = Cow::Borrowed(text);
    for s in all.iter() {
        if out.contains(s.as_str()) {
            out = Cow::Owned(out.replace(s.as_str(), REDACTED));
        }
    }
    out
}

/// `bytes` scrubbed, for writers of formatted log lines (UTF-8 in practice; other bytes
/// are kept as they are when no secret is registered).
pub fn scrub_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    let has_any = SECRETS.read().map(|s| !s.is_empty()).unwrap_or(false);
    if !has_any {
        return Cow::Borrowed(bytes);
    }
    let text = String::from_utf8_lossy(bytes);
    match scrub(&text) {
        Cow::Borrowed(_) => Cow::Borrowed(bytes),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

/// Whether a query parameter's name says its value is a secret.
fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "key",
        "sig",
        "credential",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// The authority's bounds in a URL (`scheme://AUTHORITY/...`), if it has one.
fn authority(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let len = url[start..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - start);
    Some((start, start + len))
}

/// The secret values inside a URL: the userinfo's password and secret-named parameters.
fn url_secrets(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((a, b)) = authority(url) {
        if let Some(at) = url[a..b].rfind('@') {
            if let Some(colon) = url[a..a + at].find(':') {
                out.push(url[a + colon + 1..a + at].to_string());
            }
        }
    }
    if let Some(q) = url.find('?') {
        let query = &url[q + 1..];
        let query = query.split('#').next().unwrap_or("");
        for pair in query.split('&') {
            if let Some((k, v)) = pair.split_once('=') {
                if secret_name(k) && !v.is_empty() {
                    out.push(v.to_string());
                }
            }
        }
    }
    out
}

/// A URL as we show it: the userinfo's password and every secret-named query parameter
/// (`password=`, `sslpassword=`, `token=`, `sig=`, ...) replaced by `<redacted>`. Text
/// that is not a URL comes back unchanged. The one redaction every line showing a URL
/// (a database, the API, a trading API) goes through.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some((a, b)) = authority(url) {
        if let Some(at) = url[a..b].rfind('@') {
            if let Some(colon) = url[a..a + at].find(':') {
                out = format!("{}{REDACTED}{}", &url[..a + colon + 1], &url[a + at..]);
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, rest) = out.split_at(q + 1);
        let (query, fragment) = match rest.find('#') {
            Some(h) => rest.split_at(h),
            None => (rest, ""),
        };
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if secret_name(k) && !v.is_empty() => format!("{k}={REDACTED}"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}{fragment}", query.join("&"));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_passwords_or_secret_parameters() {
        for (url, shown) in [
            (
                "postgres://me:hunter22@db:5432/market",
                "postgres://me:<redacted>@db:5432/market",
            ),
            (
                "postgres://me@db/market?password=hunter22&sslmode=require",
                "postgres://me@db/market?password=<redacted>&sslmode=require",
            ),
            (
                "postgresql://db/market?sslpassword=abcd1234&application_name=x",
                "postgresql://db/market?sslpassword=<redacted>&application_name=x",
            ),
            (
                "https://user:p%40ss@proxy.example/v2?token=t0k3n#frag",
                "https://user:<redacted>@proxy.example/v2?token=<redacted>#frag",
            ),
            ("sqlite:data/market.db", "sqlite:data/market.db"),
            ("data/market.db", "data/market.db"),
            ("https://data.alpaca.markets", "https://data.alpaca.markets"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn a_secret_echoed_by_a_server_is_scrubbed_from_any_text() {
        register("SENTINEL-KEY-1234567");
        register_url("postgres://u:pa%24%24w0rd-SENTINEL@h/db");
        let echoed = "403 Forbidden: headers APCA-API-KEY-ID: SENTINEL-KEY-1234567, \
                      url postgres://u:pa$$w0rd-SENTINEL@h/db";
        let shown = scrub(echoed);
        assert!(!shown.contains("SENTINEL-KEY"), "{shown}");
        assert!(!shown.contains("w0rd-SENTINEL"), "{shown}");
        assert!(shown.contains("403 Forbidden"), "{shown}");
        assert_eq!(scrub("nothing secret here"), "nothing secret here");
    }
}
