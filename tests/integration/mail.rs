//! The mail module against a real SMTP server: aiosmtpd (PyPI) run by
//! `support/smtp_sink.py`. An accepted message arrives with both parts and the
//! unsubscribe headers; a 5xx refusal is a hard bounce, a 4xx one a deferral.
//!
//! `.ci/run` installs aiosmtpd and sets `CITECAST_REQUIRE_SMTP=1`, which turns a missing
//! aiosmtpd into a failure; elsewhere the test is skipped, saying so.

use citecast::outbound::mail::{Delivery, Mail, MailError, Mailer};

use crate::common::smtp::SmtpSink;

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
    let Some(sink) = SmtpSink::start() else { return };
    let (port, dir) = (sink.port, sink.dir.path().to_path_buf());
    let mailer =
        Mailer::new(Some(&format!("smtp://127.0.0.1:{port}")), "citecast <news@example.org>", &dir).unwrap();
    assert!(!mailer.is_outbox());
    let sent = mailer.send(&mail("reader@example.org"));
    let bounced = mailer.send(&mail("bounce@example.org"));
    let deferred = mailer.send(&mail("later@example.org"));
    let received = sink.messages();
    drop(sink);

    assert!(matches!(sent, Ok(Delivery::Sent { .. })), "{sent:?}");
    assert_eq!(received.len(), 1, "refused mail was not delivered");
    let received = &received[0];
    assert!(received.contains("To: reader@example.org"), "{received}");
    assert!(received.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{received}");
    assert!(received.contains("text/plain") && received.contains("text/html"), "{received}");

    let bounced = bounced.unwrap_err();
    assert!(matches!(bounced, MailError::Rejected(_)) && !bounced.is_transient(), "{bounced:?}");
    let deferred = deferred.unwrap_err();
    assert!(matches!(deferred, MailError::Deferred(_)) && deferred.is_transient(), "{deferred:?}");
}
