//! The mail module against a real SMTP server: aiosmtpd (PyPI) run by
//! `support/smtp_sink.py`. An accepted message arrives with both parts and the
//! unsubscribe headers; a 5xx refusal is a hard bounce, a 4xx one a deferral.
//!
//! `.ci/run` installs aiosmtpd and sets `CITECAST_REQUIRE_SMTP=1`, which turns a missing
//! aiosmtpd into a failure; elsewhere the test is skipped, saying so.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use citecast::outbound::mail::{Delivery, Mail, MailError, Mailer};

fn aiosmtpd_available() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn mail(to: &str) -> Mail {
    Mail {
        to: to.into(),
        subject: "citecast weekly, issue 1".into(),
        text: "This week's picks.".into(),
        html: Some("<p>This week's picks.</p>".into()),
        headers: vec![
            ("List-Unsubscribe", "<https://citecast.example/newsletter/unsubscribe?t=abc>".into()),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
        ],
    }
}

#[test]
fn mail_reaches_a_real_smtp_server_and_refusals_are_told_apart() {
    if !aiosmtpd_available() {
        assert!(
            std::env::var_os("CITECAST_REQUIRE_SMTP").is_none(),
            "CITECAST_REQUIRE_SMTP is set but python3 cannot import aiosmtpd (pip install aiosmtpd)"
        );
        eprintln!("skipped: python3 cannot import aiosmtpd (pip install aiosmtpd)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/integration/support/smtp_sink.py");
    let mut server = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the SMTP sink");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");

    let mailer =
        Mailer::new(Some(&format!("smtp://127.0.0.1:{port}")), "citecast <news@example.org>", dir.path())
            .unwrap();
    assert!(!mailer.is_outbox());
    let sent = mailer.send(&mail("reader@example.org"));
    let bounced = mailer.send(&mail("bounce@example.org"));
    let deferred = mailer.send(&mail("later@example.org"));
    let _ = server.kill();
    let _ = server.wait();

    assert!(matches!(sent, Ok(Delivery::Sent { .. })), "{sent:?}");
    let received = std::fs::read_to_string(dir.path().join("1.eml")).unwrap();
    assert!(received.contains("To: reader@example.org"), "{received}");
    assert!(received.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{received}");
    assert!(received.contains("text/plain") && received.contains("text/html"), "{received}");

    let bounced = bounced.unwrap_err();
    assert!(matches!(bounced, MailError::Rejected(_)) && !bounced.is_transient(), "{bounced:?}");
    let deferred = deferred.unwrap_err();
    assert!(matches!(deferred, MailError::Deferred(_)) && deferred.is_transient(), "{deferred:?}");
    assert!(!dir.path().join("2.eml").exists(), "refused mail was not delivered");
}
