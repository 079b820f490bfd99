//! Delivering notifications to a webhook through the one outbound client.

use std::fmt;
use std::time::Duration;

use super::*;

/// Failures of webhook configuration and delivery.
#[derive(Debug)]
pub enum AlertError {
    /// Not a usable `http(s)://host[:port][/path]` URL.
    BadUrl { url: String, reason: String },
    /// Any scheme but `http` and `https`.
    UnsupportedScheme { url: String, scheme: String },
    /// Resolving, connecting, writing or reading failed (including timeouts).
    Io { url: String, source: std::io::Error },
    /// The receiver answered with a status other than 2xx.
    Status { url: String, status: u16 },
    /// The receiver's answer did not start with an HTTP status line.
    MalformedReply { url: String },
}

impl fmt::Display for AlertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlertError::BadUrl { url, reason } => {
                write!(f, "webhook URL '{url}': {reason} (expected https://host[:port]/path or http://...)")
            }
            AlertError::UnsupportedScheme { url, scheme } => {
                write!(f, "webhook URL '{url}': {scheme}:// is not supported, only https:// and http://")
            }
            AlertError::Io { url, source } => write!(f, "webhook {url}: {source}"),
            AlertError::Status { url, status } => write!(f, "webhook {url} answered {status}, expected 2xx"),
            AlertError::MalformedReply { url } => write!(f, "webhook {url}: the reply is not HTTP"),
        }
    }
}

impl std::error::Error for AlertError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AlertError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The parts of an `http://` or `https://` URL a POST needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https://` (TLS) rather than `http://`.
    pub tls: bool,
    /// Host name or address, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// `host:port` as the `Host` header wants it.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

/// Parses `http(s)://host[:port][/path][?query]` (port 80 or 443 by default, a fragment
/// dropped).
/// Refuses other schemes, credentials in the URL, and whitespace or control characters
/// (which would let a URL inject request headers).
pub fn parse_http_url(url: &str) -> Result<HttpUrl, AlertError> {
    let bad = |reason: &str| AlertError::BadUrl { url: url.to_string(), reason: reason.to_string() };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace or control characters"));
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let tls = scheme.eq_ignore_ascii_case("https");
    if !tls && !scheme.eq_ignore_ascii_case("http") {
        return Err(AlertError::UnsupportedScheme {
            url: url.to_string(),
            scheme: scheme.to_ascii_lowercase(),
        });
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(bad("credentials in the URL are not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '[' in the host"))?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(|| bad("junk after the IPv6 address"))?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None if tls => 443,
        None => 80,
        Some(p) => {
            p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| bad("the port is not 1..65535"))?
        }
    };
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    Ok(HttpUrl { tls, host: host.to_string(), port, path })
}

/// Delivers notifications as JSON POSTs to an `https://` or `http://` URL.
#[derive(Clone)]
pub struct WebhookSink {
    url: HttpUrl,
    timeout: Duration,
    retries: u32,
    /// Built once per setting: its TLS configuration is not rebuilt per alert.
    client: crate::outbound::Client,
}

/// The delivery client: `timeout` per attempt, `retries` more after a failed one.
fn client(timeout: Duration, retries: u32) -> crate::outbound::Client {
    crate::outbound::Client::new(timeout).with_retries(retries, Duration::from_millis(500))
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("url", &self.url.to_string())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl WebhookSink {
    /// Connect, write and read timeouts (each).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Checks the URL now, so a bad one fails at startup rather than at the first alert.
    pub fn new(url: &str) -> Result<WebhookSink, AlertError> {
        let (timeout, retries) = (WebhookSink::DEFAULT_TIMEOUT, 2);
        Ok(WebhookSink { url: parse_http_url(url)?, timeout, retries, client: client(timeout, retries) })
    }

    /// Each attempt's bound.
    pub fn with_timeout(mut self, timeout: Duration) -> WebhookSink {
        self.timeout = timeout;
        self.client = client(self.timeout, self.retries);
        self
    }

    /// Attempts after a failed one (no answer, 429 or 5xx); 2 by default.
    pub fn with_retries(mut self, retries: u32) -> WebhookSink {
        self.retries = retries;
        self.client = client(self.timeout, self.retries);
        self
    }

    pub fn url(&self) -> &HttpUrl {
        &self.url
    }

    /// POSTs `notification` as JSON and waits for the status line. Blocks for up to a few
    /// timeouts: call it from a thread of its own (or `web::block`), not an async worker.
    pub fn deliver(&self, notification: &Notification) -> Result<(), AlertError> {
        let body = serde_json::to_vec(notification).map_err(|e| self.io(e.into()))?;
        self.post_json(&body)
    }

    fn io(&self, source: std::io::Error) -> AlertError {
        AlertError::Io { url: self.url.to_string(), source }
    }

    fn post_json(&self, body: &[u8]) -> Result<(), AlertError> {
        use crate::outbound::OutboundError;
        let url = self.url.to_string();
        match self.client.post_json(&url, body) {
            Ok(reply) if (200..300).contains(&reply.status) => Ok(()),
            Ok(reply) => Err(AlertError::Status { url, status: reply.status }),
            Err(OutboundError::Protocol { .. }) => Err(AlertError::MalformedReply { url }),
            Err(OutboundError::Transport { message, kind, .. }) => {
                Err(AlertError::Io { url, source: std::io::Error::new(kind, message) })
            }
            Err(OutboundError::BadUrl { reason, .. }) => Err(AlertError::BadUrl { url, reason }),
        }
    }
}
