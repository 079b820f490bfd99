//! The one outbound HTTP client: every request citecast makes to another server (alert
//! webhooks now, customers' webhooks and chat tools next) goes through [`Client`]. It
//! speaks HTTP and HTTPS (rustls with the Mozilla roots), bounds every request by a
//! timeout, and retries with exponential backoff when the caller asks for it. It blocks:
//! call it from a thread of its own or `web::block`, never on an async worker.

pub mod admin;
pub mod mail;

use std::time::Duration;

/// How a request failed before any status came back.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("{url}: {reason}")]
    BadUrl { url: String, reason: String },
    /// Connecting, TLS, writing or reading failed, or the timeout passed.
    #[error("{url}: {message}")]
    Transport { url: String, message: String, kind: std::io::ErrorKind },
    /// The answer was not HTTP.
    #[error("{url}: the reply is not HTTP ({message})")]
    Protocol { url: String, message: String },
}

/// A status, the headers (names in lower case) and the body (capped at 16 MiB).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    retries: u32,
    backoff: Duration,
}

/// Longest reply body read.
const MAX_BODY: u64 = 16 * 1024 * 1024;

impl Client {
    /// A client whose requests each take at most `timeout` (connecting included).
    pub fn new(timeout: Duration) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("citecast/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client { agent, retries: 0, backoff: Duration::from_millis(500) }
    }

    /// Retries a failed delivery (no answer, 429 or 5xx) up to `retries` more times,
    /// waiting `backoff`, then twice that, and so on.
    pub fn with_retries(mut self, retries: u32, backoff: Duration) -> Client {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// POSTs `body` as JSON.
    pub fn post_json(&self, url: &str, body: &[u8]) -> Result<Reply, OutboundError> {
        let mut wait = self.backoff;
        let mut attempt = 0;
        loop {
            let outcome = self.post_once(url, body);
            let retry = match &outcome {
                Ok(r) => r.status == 429 || r.status >= 500,
                Err(OutboundError::Transport { .. }) => true,
                Err(_) => false,
            };
            if !retry || attempt >= self.retries {
                return outcome;
            }
            attempt += 1;
            tracing::warn!(
                url,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "outbound request failed; retrying"
            );
            std::thread::sleep(wait);
            wait = wait.saturating_mul(2);
        }
    }

    fn post_once(&self, url: &str, body: &[u8]) -> Result<Reply, OutboundError> {
        self.send("POST", url, &[("content-type", "application/json")], Some(body))
    }

    /// One request, no retries: any method, extra headers, an optional body. A reply cut
    /// short (the connection closed before its body was whole) is a transport error.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Reply, OutboundError> {
        let bad = |reason: String| OutboundError::BadUrl { url: url.to_string(), reason };
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.unwrap_or_default().to_vec()).map_err(|e| bad(e.to_string()))?;
        let mut resp = self.agent.run(request).map_err(|e| map_error(url, e))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| {
                (n.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned())
            })
            .collect();
        let body =
            resp.body_mut().with_config().limit(MAX_BODY).read_to_string().map_err(|e| map_error(url, e))?;
        Ok(Reply { status, headers, body })
    }
}

fn map_error(url: &str, e: ureq::Error) -> OutboundError {
    use std::io::ErrorKind as K;
    let transport =
        |kind: K, message: String| OutboundError::Transport { url: url.to_string(), message, kind };
    match e {
        ureq::Error::BadUri(reason) => OutboundError::BadUrl { url: url.to_string(), reason },
        ureq::Error::Http(e) => OutboundError::BadUrl { url: url.to_string(), reason: e.to_string() },
        ureq::Error::Protocol(e) => OutboundError::Protocol { url: url.to_string(), message: e.to_string() },
        ureq::Error::Io(e) => transport(e.kind(), e.to_string()),
        ureq::Error::Timeout(t) => transport(K::TimedOut, format!("no answer in time ({t})")),
        ureq::Error::HostNotFound => transport(K::NotFound, "the host name does not resolve".into()),
        other => transport(K::Other, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A receiver answering each connection with the next status of `statuses`.
    fn receiver(statuses: Vec<&'static str>) -> (String, std::thread::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut served = 0;
            for status in statuses {
                let (mut conn, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                while !String::from_utf8_lossy(&seen).contains("\r\n\r\n{}") {
                    let n = conn.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&buf[..n]);
                }
                write!(conn, "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    .unwrap();
                served += 1;
            }
            served
        });
        (url, handle)
    }

    #[test]
    fn retries_with_backoff_until_a_2xx() {
        let (url, server) = receiver(vec!["503 Service Unavailable", "500 Internal Server Error", "200 OK"]);
        let client = Client::new(Duration::from_secs(5)).with_retries(3, Duration::from_millis(10));
        let reply = client.post_json(&url, b"{}").unwrap();
        assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));
        assert_eq!(server.join().unwrap(), 3);
    }

    #[test]
    fn without_retries_the_first_answer_stands_and_failures_say_why() {
        let (url, server) = receiver(vec!["500 Internal Server Error"]);
        let reply = Client::new(Duration::from_secs(5)).post_json(&url, b"{}").unwrap();
        assert_eq!(reply.status, 500);
        server.join().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let err = Client::new(Duration::from_secs(2))
            .post_json(&format!("http://127.0.0.1:{port}/"), b"{}")
            .unwrap_err();
        assert!(matches!(err, OutboundError::Transport { .. }), "{err}");
        let err = Client::new(Duration::from_secs(2)).post_json("not a url", b"{}").unwrap_err();
        assert!(matches!(err, OutboundError::BadUrl { .. }), "{err}");
    }
}
