//! The one mail module: messages to people (confirmations, receipts, the newsletter) go
//! out through here, over SMTP (`lettre`, TLS through rustls) to the server given by
//! `--smtp-url` / `CITECAST_SMTP_URL` (`smtp://host:2525`, `smtp://host:587?tls=required`,
//! `smtps://user:pass@host`). Without one, each message is written to an outbox
//! directory as an `.eml` file, so nothing is lost and an operator can see what would
//! have gone out.
//!
//! Sending blocks (network I/O): call [`Mailer::send`] off the async workers. Its error
//! says what the caller must do: a permanent SMTP rejection (5xx) is a hard bounce,
//! never retried; a transient one (4xx) or a network failure is retried later.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{Message, SmtpTransport, Transport};

/// One message to one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    /// The plain-text part; every message has one.
    pub text: String,
    /// An HTML alternative, if any.
    pub html: Option<String>,
    /// Extra headers, e.g. `List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 8058).
    pub headers: Vec<(&'static str, String)>,
}

/// Where a message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted by the SMTP server; its reply.
    Sent { reply: String },
    /// Written to the outbox (no SMTP server configured).
    Outbox { file: PathBuf },
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The address or a header cannot make a message: the caller's data, not worth a retry.
    #[error("cannot build the message: {0}")]
    Invalid(String),
    /// The server refused for good (SMTP 5xx): a hard bounce.
    #[error("the mail server refused the message for good: {0}")]
    Rejected(String),
    /// The server refused for now (SMTP 4xx) or could not be reached: retry later.
    #[error("the message could not be delivered now: {0}")]
    Deferred(String),
    /// The outbox could not be written.
    #[error("cannot write to the outbox {path}: {source}")]
    Outbox { path: String, source: std::io::Error },
}

impl MailError {
    /// Whether a later attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, MailError::Deferred(_))
    }
}

enum Route {
    Smtp(Box<SmtpTransport>),
    Outbox(PathBuf),
}

/// Sends [`Mail`] from one sender address, over SMTP or into the outbox.
pub struct Mailer {
    from: Mailbox,
    route: Route,
}

impl Mailer {
    /// Over SMTP when `smtp_url` is given, else into `outbox`. `from` is the sender,
    /// e.g. `citecast <news@example.org>`.
    pub fn new(smtp_url: Option<&str>, from: &str, outbox: &Path) -> Result<Mailer, MailError> {
        let from: Mailbox = from.parse().map_err(|e| MailError::Invalid(format!("sender '{from}': {e}")))?;
        let route = match smtp_url {
            Some(url) => {
                let transport = SmtpTransport::from_url(url)
                    .map_err(|e| MailError::Invalid(format!("SMTP URL '{}': {e}", redact(url))))?
                    .timeout(Some(Duration::from_secs(20)))
                    .build();
                Route::Smtp(Box::new(transport))
            }
            None => Route::Outbox(outbox.to_path_buf()),
        };
        Ok(Mailer { from, route })
    }

    /// Whether messages go to the outbox instead of a mail server (pages say so).
    pub fn is_outbox(&self) -> bool {
        matches!(self.route, Route::Outbox(_))
    }

    /// Sends one message; blocks until the server answers (at most 20 s per step).
    pub fn send(&self, mail: &Mail) -> Result<Delivery, MailError> {
        let message = self.build(mail)?;
        match &self.route {
            Route::Smtp(transport) => match transport.send(&message) {
                Ok(reply) => Ok(Delivery::Sent { reply: reply.message().collect::<Vec<_>>().join(" ") }),
                Err(e) if e.is_permanent() => Err(MailError::Rejected(e.to_string())),
                Err(e) => Err(MailError::Deferred(e.to_string())),
            },
            Route::Outbox(dir) => {
                let io = |source| MailError::Outbox { path: dir.display().to_string(), source };
                std::fs::create_dir_all(dir).map_err(io)?;
                let name = format!(
                    "{}-{}.eml",
                    citecast_actors::dates::format_secs_compact(citecast_actors::dates::now_secs()),
                    crate::accounts::random_base62(8)
                );
                let file = dir.join(name);
                citecast_actors::files::write_atomically(&file, &message.formatted()).map_err(io)?;
                Ok(Delivery::Outbox { file })
            }
        }
    }

    fn build(&self, mail: &Mail) -> Result<Message, MailError> {
        let to: Mailbox =
            mail.to.parse().map_err(|e| MailError::Invalid(format!("recipient '{}': {e}", mail.to)))?;
        let mut builder = Message::builder().from(self.from.clone()).to(to).subject(mail.subject.clone());
        for (name, value) in &mail.headers {
            if value.contains(['\r', '\n']) {
                return Err(MailError::Invalid(format!("header {name} holds a line break")));
            }
            builder =
                builder.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str(name), value.clone()));
        }
        let built = match &mail.html {
            Some(html) => {
                builder.multipart(MultiPart::alternative_plain_html(mail.text.clone(), html.clone()))
            }
            None => builder.singlepart(SinglePart::plain(mail.text.clone())),
        };
        built.map_err(|e| MailError::Invalid(e.to_string()))
    }
}

/// The URL without its password, for messages and logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***{}", &url[..scheme], &url[at..]),
        _ => url.to_string(),
    }
}

/// Sends one message on the blocking pool, for async callers.
pub async fn send_blocking(mailer: std::sync::Arc<Mailer>, mail: Mail) -> Result<Delivery, MailError> {
    tokio::task::spawn_blocking(move || mailer.send(&mail))
        .await
        .unwrap_or_else(|e| Err(MailError::Deferred(format!("the sending thread failed: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(to: &str) -> Mail {
        Mail {
            to: to.into(),
            subject: "Confirm your subscription".into(),
            text: "Open the link to confirm.".into(),
            html: Some("<p>Open the <a href=\"https://example.org/c\">link</a> to confirm.</p>".into()),
            headers: vec![
                ("List-Unsubscribe", "<https://example.org/u?t=abc>".into()),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
            ],
        }
    }

    #[test]
    fn without_smtp_messages_land_in_the_outbox_with_both_parts_and_headers() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(None, "citecast <news@example.org>", dir.path()).unwrap();
        assert!(mailer.is_outbox());
        let Delivery::Outbox { file } = mailer.send(&mail("reader@example.org")).unwrap() else {
            panic!("not the outbox")
        };
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains("To: reader@example.org"), "{text}");
        assert!(text.contains("List-Unsubscribe: <https://example.org/u?t=abc>"), "{text}");
        assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{text}");
        assert!(text.contains("text/plain") && text.contains("text/html"), "{text}");
    }

    #[test]
    fn bad_addresses_and_injected_headers_are_refused_before_sending() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(None, "news@example.org", dir.path()).unwrap();
        assert!(matches!(mailer.send(&mail("not an address")), Err(MailError::Invalid(_))));
        let mut m = mail("a@example.org");
        m.headers.push(("List-Unsubscribe", "<x>\r\nBcc: victim@example.org".into()));
        assert!(matches!(mailer.send(&m), Err(MailError::Invalid(_))));
        assert_eq!(std::fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0), 0, "nothing written");
        assert!(Mailer::new(Some("ftp://x"), "news@example.org", dir.path()).is_err());
        assert_eq!(redact("smtps://me:secret@mail.example.org:465"), "smtps://***@mail.example.org:465");
    }
}
