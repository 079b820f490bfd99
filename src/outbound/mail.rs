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
    /// The SMTP URL, for [`Mailer::session`] (a connection kept for a whole delivery).
    smtp_url: Option<String>,
    dkim: Option<lettre::message::dkim::DkimConfig>,
}

/// DKIM signing settings: the private key (PEM, PKCS#1 RSA; or a base64 Ed25519 seed),
/// the selector and the signing domain.
pub struct Dkim {
    pub key_pem: String,
    pub selector: String,
    pub domain: String,
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
        Ok(Mailer { from, route, smtp_url: smtp_url.map(str::to_string), dkim: None })
    }

    /// Signs every message with DKIM from now on.
    pub fn with_dkim(mut self, dkim: Dkim) -> Result<Mailer, MailError> {
        use lettre::message::dkim::{DkimConfig, DkimSigningAlgorithm, DkimSigningKey};
        let algorithm = if dkim.key_pem.contains("BEGIN") {
            DkimSigningAlgorithm::Rsa
        } else {
            DkimSigningAlgorithm::Ed25519
        };
        let key = DkimSigningKey::new(dkim.key_pem.trim(), algorithm)
            .map_err(|e| MailError::Invalid(format!("DKIM key: {e}")))?;
        self.dkim = Some(DkimConfig::default_config(dkim.selector, dkim.domain, key));
        Ok(self)
    }

    /// The sender's domain (for Message-IDs and DKIM's default domain).
    pub fn sender_domain(&self) -> String {
        self.from.email.domain().to_string()
    }

    /// A session for sending many messages: one SMTP connection kept open across them
    /// (reconnected after a failure), or the outbox.
    pub fn session(&self) -> Session<'_> {
        Session { mailer: self, conn: None }
    }

    /// Whether messages go to the outbox instead of a mail server (pages say so).
    pub fn is_outbox(&self) -> bool {
        matches!(self.route, Route::Outbox(_))
    }

    /// Sends one message; blocks until the server answers (at most 20 s per step).
    pub fn send(&self, mail: &Mail) -> Result<Delivery, MailError> {
        let message = self.build(mail)?;
        self.send_built(&message)
    }

    fn send_built(&self, message: &Message) -> Result<Delivery, MailError> {
        match &self.route {
            Route::Smtp(transport) => match transport.send(message) {
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
        let mut message = self.build_unsigned(mail)?;
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        Ok(message)
    }

    fn build_unsigned(&self, mail: &Mail) -> Result<Message, MailError> {
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

/// Many messages over one connection ([`Mailer::session`]), each sent so that a crash at
/// any moment neither loses nor repeats it: the caller's `commit` runs after the server
/// agreed to take the message (its 354 to DATA) and before any of it is written; the
/// message then leaves in one write. A crash before `commit` is durable leaves the server
/// a transaction it drops, so the message is sent again after a restart; a crash after
/// it finds the message committed and never sends it again, and the kernel still
/// delivers what the one write handed it. Only the time between `commit` returning and
/// that write could lose a message, so `commit` should only write (a line in a file
/// outlives a killed process) and sync after `send` returns.
pub struct Session<'a> {
    mailer: &'a Mailer,
    conn: Option<lettre::transport::smtp::client::SmtpConnection>,
}

/// Where an SMTP URL points, and how.
struct SmtpTarget {
    host: String,
    port: u16,
    implicit_tls: bool,
    starttls: Option<bool>,
    credentials: Option<(String, String)>,
}

fn parse_smtp_url(url: &str) -> Result<SmtpTarget, MailError> {
    let bad = |why: &str| MailError::Invalid(format!("SMTP URL '{}': {why}", redact(url)));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let implicit_tls = match scheme {
        "smtp" => false,
        "smtps" => true,
        _ => return Err(bad("the scheme must be smtp or smtps")),
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let rest = rest.trim_end_matches('/');
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let credentials = userinfo.map(|u| {
        let (user, pass) = u.split_once(':').unwrap_or((u, ""));
        (decode(user), decode(pass))
    });
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad("the port is not a number"))?),
        None => (hostport.to_string(), if implicit_tls { 465 } else { 25 }),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let starttls = query.split('&').find_map(|kv| match kv {
        "tls=required" => Some(true),
        "tls=opportunistic" => Some(false),
        _ => None,
    });
    Ok(SmtpTarget { host, port, implicit_tls, starttls, credentials })
}

fn smtp_error(e: lettre::transport::smtp::Error) -> MailError {
    if e.is_permanent() {
        MailError::Rejected(e.to_string())
    } else {
        MailError::Deferred(e.to_string())
    }
}

impl Session<'_> {
    fn connect(&self, url: &str) -> Result<lettre::transport::smtp::client::SmtpConnection, MailError> {
        use lettre::transport::smtp::authentication::{Credentials, Mechanism};
        use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
        use lettre::transport::smtp::extension::ClientId;
        let t = parse_smtp_url(url)?;
        let tls = |host: &str| {
            TlsParameters::new(host.to_string())
                .map_err(|e| MailError::Invalid(format!("TLS for {host}: {e}")))
        };
        let hello = ClientId::Domain(self.mailer.sender_domain());
        let timeout = Some(Duration::from_secs(20));
        let implicit = if t.implicit_tls { Some(tls(&t.host)?) } else { None };
        let mut conn =
            SmtpConnection::connect((t.host.as_str(), t.port), timeout, &hello, implicit.as_ref(), None)
                .map_err(smtp_error)?;
        if let Some(required) = t.starttls {
            if conn.can_starttls() {
                conn.starttls(&tls(&t.host)?, &hello).map_err(smtp_error)?;
            } else if required {
                return Err(MailError::Deferred(format!("{} does not offer STARTTLS", t.host)));
            }
        }
        if let Some((user, pass)) = t.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &Credentials::new(user, pass))
                .map_err(smtp_error)?;
        }
        Ok(conn)
    }

    /// Sends `mail`; `commit` runs once the message is at the server but not yet
    /// accepted (see the type's documentation). For the outbox, `commit` runs before the
    /// file is written, and an `Err` from it writes nothing.
    pub fn send(
        &mut self,
        mail: &Mail,
        mut commit: impl FnMut() -> Result<(), String>,
    ) -> Result<Delivery, MailError> {
        let message = self.mailer.build(mail)?;
        let Some(url) = self.mailer.smtp_url.clone() else {
            commit().map_err(MailError::Deferred)?;
            return self.mailer.send_built(&message);
        };
        if self.conn.as_ref().is_none_or(|c| c.has_broken()) {
            self.conn = Some(self.connect(&url)?);
        }
        let conn = self.conn.as_mut().expect("connected above");
        let result = Self::transaction(conn, &message, &mut commit);
        if result.is_err() {
            // After any refusal the server's state is unknown: start afresh next time.
            if let Some(mut c) = self.conn.take() {
                c.abort();
            }
        }
        result
    }

    fn transaction(
        conn: &mut lettre::transport::smtp::client::SmtpConnection,
        message: &Message,
        commit: &mut impl FnMut() -> Result<(), String>,
    ) -> Result<Delivery, MailError> {
        use lettre::transport::smtp::commands::{Data, Mail as MailCmd, Rcpt};
        use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
        let envelope = message.envelope();
        let bytes = message.formatted();
        let mut options = Vec::new();
        if !bytes.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        conn.command(MailCmd::new(envelope.from().cloned(), options)).map_err(smtp_error)?;
        for to in envelope.to() {
            conn.command(Rcpt::new(to.clone(), vec![])).map_err(smtp_error)?;
        }
        conn.command(Data).map_err(smtp_error)?;
        // The commit goes here, after the server said "go ahead" and before a single
        // byte of the message: the message and its final "." then leave in one write.
        // Once that write is in the kernel's buffer, the message reaches the server
        // even if this process is killed (the kernel sends what it holds before closing),
        // so a crash after the commit cannot lose it; a crash before leaves the server
        // a transaction without its end, which it drops. One write also avoids Nagle's
        // algorithm holding a separate final "." back until the server's delayed ACK.
        commit().map_err(|e| MailError::Deferred(format!("not committed: {e}")))?;
        let reply = match String::from_utf8(bytes) {
            Ok(text) => conn.command(DotStuffed(&text)).map_err(smtp_error)?,
            Err(e) => conn.message(e.as_bytes()).map_err(smtp_error)?,
        };
        Ok(Delivery::Sent { reply: reply.message().collect::<Vec<_>>().join(" ") })
    }
}

/// A message as the DATA phase sends it (RFC 5321 4.5.2): lines starting with "." get
/// another, and the end is CRLF "." CRLF.
struct DotStuffed<'a>(&'a str);

impl std::fmt::Display for DotStuffed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, line) in self.0.split("\r\n").enumerate() {
            if i > 0 {
                f.write_str("\r\n")?;
            }
            if line.starts_with('.') {
                f.write_str(".")?;
            }
            f.write_str(line)?;
        }
        if !self.0.ends_with("\r\n") {
            f.write_str("\r\n")?;
        }
        f.write_str(".\r\n")
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

    #[test]
    fn with_a_key_messages_are_dkim_signed_and_message_ids_are_kept() {
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let seed = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let dkim = Dkim { key_pem: seed, selector: "cc2026".into(), domain: "example.org".into() };
        let mailer = Mailer::new(None, "news@example.org", dir.path()).unwrap().with_dkim(dkim).unwrap();
        let mut m = mail("reader@example.org");
        m.headers.push(("Message-ID", "<newsletter-1-sub_x@example.org>".into()));
        let Delivery::Outbox { file } = mailer.send(&m).unwrap() else { panic!("not the outbox") };
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains("DKIM-Signature: v=1; a=ed25519-sha256;"), "{text}");
        assert!(text.contains("d=example.org") && text.contains("s=cc2026"), "{text}");
        assert_eq!(text.matches("Message-ID:").count(), 1, "{text}");
        assert!(text.contains("Message-ID: <newsletter-1-sub_x@example.org>"), "{text}");
        let bad = Dkim { key_pem: "not a key".into(), selector: "s".into(), domain: "example.org".into() };
        assert!(Mailer::new(None, "news@example.org", dir.path()).unwrap().with_dkim(bad).is_err());
    }

    #[test]
    fn messages_are_dot_stuffed_and_ended_once() {
        assert_eq!(DotStuffed("a\r\n.b\r\n..c\r\n").to_string(), "a\r\n..b\r\n...c\r\n.\r\n");
        assert_eq!(DotStuffed("no newline").to_string(), "no newline\r\n.\r\n");
        assert_eq!(DotStuffed(".").to_string(), "..\r\n.\r\n");
    }

    #[test]
    fn smtp_urls_are_read_with_their_port_tls_and_credentials() {
        let t = parse_smtp_url("smtp://me%40x.org:p%3Ass@mail.example.org:587?tls=required").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.implicit_tls, t.starttls),
            ("mail.example.org", 587, false, Some(true))
        );
        assert_eq!(t.credentials, Some(("me@x.org".into(), "p:ss".into())));
        let t = parse_smtp_url("smtps://mail.example.org").unwrap();
        assert_eq!((t.port, t.implicit_tls, t.starttls), (465, true, None));
        assert_eq!(parse_smtp_url("smtp://127.0.0.1:2525").unwrap().port, 2525);
        for bad in ["ftp://x", "smtp://", "smtp://host:port", "nonsense"] {
            assert!(parse_smtp_url(bad).is_err(), "{bad}");
        }
    }
}
