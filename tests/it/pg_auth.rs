//! A wrong PostgreSQL password. The machine's server trusts every local connection, so it
//! never refuses a password; this test stands in a minimal server that speaks the start of
//! the PostgreSQL protocol as a password-checking server does — SSL refused, a cleartext
//! password asked for, then `FATAL 28P01 password authentication failed` — and checks that
//! the importer fails with one line that names the problem and never shows the password.

use crate::common::{assert_one_line_failure, small, standin, Workdir};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SSL_REQUEST: i32 = 80_877_103;

/// Answers one connection as a server whose password check fails; returns the password the
/// client sent.
async fn refuse_password(mut sock: TcpStream) -> std::io::Result<String> {
    // Startup: an optional SSLRequest (answered 'N': no TLS), then the StartupMessage.
    loop {
        let len = sock.read_i32().await?;
        let mut body = vec![0u8; (len - 4) as usize];
        sock.read_exact(&mut body).await?;
        let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        if code == SSL_REQUEST {
            sock.write_all(b"N").await?;
            continue;
        }
        break;
    }
    // AuthenticationCleartextPassword.
    sock.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await?;
    // PasswordMessage: 'p', length, the password and a NUL.
    let tag = sock.read_u8().await?;
    assert_eq!(tag, b'p', "expected a password message");
    let len = sock.read_i32().await?;
    let mut body = vec![0u8; (len - 4) as usize];
    sock.read_exact(&mut body).await?;
    let password = String::from_utf8_lossy(body.strip_suffix(&[0]).unwrap_or(&body)).into_owned();
    // ErrorResponse, as PostgreSQL sends it for a wrong password.
    let mut fields = Vec::new();
    for (k, v) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "28P01"),
        (b'M', "password authentication failed for user \"root\""),
    ] {
        fields.push(k);
        fields.extend_from_slice(v.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut msg = vec![b'E'];
    msg.extend_from_slice(&(fields.len() as i32 + 4).to_be_bytes());
    msg.extend_from_slice(&fields);
    sock.write_all(&msg).await?;
    sock.shutdown().await?;
    Ok(password)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_one_line_without_the_password() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = sent.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            if let Ok(p) = refuse_password(sock).await {
                seen.lock().unwrap().push(p);
            }
        }
    });
    let s = standin(small(100)).await;
    let w = Workdir::new();
    let url = format!("postgres://root:hunter2@127.0.0.1:{port}/test");
    let run = w
        .import(
            &s.url(),
            "AAPL",
            "2024-01-02",
            "2024-01-02",
            &["--database-url", &url],
        )
        .await;
    assert_one_line_failure(
        &run,
        1,
        &format!(
            "cannot connect (PostgreSQL postgres://root:<redacted>@127.0.0.1:{port}/test): \
             error returned from database: password authentication failed for user \"root\""
        ),
    );
    // The password did reach the server (so the check really ran) and nowhere else.
    assert_eq!(sent.lock().unwrap().as_slice(), ["hunter2"]);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    assert!(!w.log().contains("hunter2"));
    // Nothing was fetched: the database is opened before the first request.
    assert!(s.request_log().is_empty());
}
