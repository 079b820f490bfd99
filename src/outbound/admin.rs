//! Operator commands talking to a running server on the same machine, through the one
//! outbound client (`src/outbound`), with the admin token and the CLI user for the audit
//! log.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a running server leaves in its data directory (`server.json`) for operator
/// commands: where it listens and its admin token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub addr: String,
    pub pid: u32,
    pub token: String,
}

/// Why a call to the running server failed, in words for the operator.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AdminError(pub String);

pub struct Response {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A request to the server's admin endpoints, with its admin token.
pub fn request(
    info: &ServerInfo,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<Response, AdminError> {
    request_as(&info.addr, Some(&info.token), method, path, body, timeout)
}

/// A request to `host` with an optional bearer token (an admin token or an API key),
/// through the one outbound client.
pub fn request_as(
    host: &str,
    bearer: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<Response, AdminError> {
    use crate::outbound::{Client, OutboundError};
    use std::io::ErrorKind as K;
    let auth = bearer.map(|t| format!("Bearer {t}"));
    // Who runs the command, for the audit log.
    let actor = cli_actor();
    let mut headers = vec![("content-type", "application/json"), ("x-citecast-actor", actor.as_str())];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    let url = format!("http://{host}{path}");
    // A server that stops mid-call closes (or resets) the connection: say so, instead of
    // calling the empty or partial reply malformed.
    let gone = || {
        AdminError(format!(
            "the server at {host} closed the connection before answering; it may have stopped \
             (check its log and `citecast stats`), then retry"
        ))
    };
    match Client::new(timeout).send(method, &url, &headers, body.map(str::as_bytes)) {
        Ok(r) => Ok(Response { status: r.status, headers: r.headers, body: r.body }),
        Err(OutboundError::Protocol { .. }) => Err(gone()),
        Err(OutboundError::Transport { kind, message, .. }) => Err(match kind {
            K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => gone(),
            K::WouldBlock | K::TimedOut => AdminError(format!(
                "the server at {host} did not answer within {} s; it may still be working (check `citecast jobs` or its log)",
                timeout.as_secs()
            )),
            _ => AdminError(format!("server at {host}: {message}")),
        }),
        Err(e) => Err(AdminError(e.to_string())),
    }
}

/// Whether the server described by `info` is up and answering.
pub fn is_alive(info: &ServerInfo) -> bool {
    matches!(request(info, "GET", "/healthz", None, Duration::from_secs(2)), Ok(r) if r.status == 200)
}

/// `cli:<user>` for the audit log: the operating-system user running the command.
pub fn cli_actor() -> String {
    let named = |v: &str| std::env::var(v).ok().filter(|u| !u.is_empty());
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let user = named("USER").or_else(|| named("LOGNAME")).unwrap_or_else(|| format!("uid{uid}"));
    let user: String =
        user.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).take(64).collect();
    format!("cli:{user}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A server that reads the request, writes `reply` and closes.
    fn one_shot(reply: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(reply);
        });
        addr
    }

    #[test]
    fn a_server_that_dies_mid_call_is_reported_as_gone_not_malformed() {
        for reply in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\nContent-Le",
            b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"a\":",
        ] {
            let addr = one_shot(reply);
            let err =
                request_as(&addr, None, "GET", "/admin/stats", None, Duration::from_secs(5)).err().unwrap();
            let msg = err.to_string();
            assert!(msg.contains("closed the connection before answering"), "{reply:?}: {msg}");
            assert!(!msg.contains("malformed"), "{msg}");
        }
        let addr = one_shot(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
        let r = request_as(&addr, None, "GET", "/healthz", None, Duration::from_secs(5)).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    }
}
