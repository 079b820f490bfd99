//! A minimal blocking HTTP/1.1 client for operator commands talking to a running
//! server on the same machine (loopback, small JSON bodies), so they need no HTTP
//! client dependency.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::server::ServerInfo;
use crate::CliError;

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
) -> Result<Response, CliError> {
    request_as(&info.addr, Some(&info.token), method, path, body, timeout)
}

/// A request to `host` with an optional bearer token (an admin token or an API key).
pub fn request_as(
    host: &str,
    bearer: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<Response, CliError> {
    let fail = |e: std::io::Error| CliError::Admin(format!("server at {host}: {e}"));
    let addr = host
        .to_socket_addrs()
        .map_err(fail)?
        .next()
        .ok_or_else(|| CliError::Admin(format!("cannot resolve {host}")))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(fail)?;
    stream.set_read_timeout(Some(timeout)).map_err(fail)?;
    let body = body.unwrap_or("");
    let auth = bearer.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    // Who runs the command, for the audit log.
    let actor = format!("X-Citecast-Actor: {}\r\n", cli_actor());
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}{actor}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).map_err(fail)?;
    stream.write_all(body.as_bytes()).map_err(fail)?;
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    // A server that stops mid-call closes (or resets) the connection: say so, instead of
    // calling the empty or partial reply malformed.
    let gone = || {
        CliError::Admin(format!(
            "the server at {host} closed the connection before answering; it may have stopped \
             (check its log and `citecast stats`), then retry"
        ))
    };
    if let Err(e) = read {
        return Err(match e.kind() {
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => gone(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => CliError::Admin(format!(
                "the server at {host} did not answer within {} s; it may still be working (check `citecast jobs` or its log)",
                timeout.as_secs()
            )),
            _ => fail(e),
        });
    }
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return Err(gone()) };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| CliError::Admin(format!("malformed reply from {host}")))?;
    let length = head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok()).flatten()
    });
    if length.is_some_and(|n| body.len() < n) {
        return Err(gone());
    }
    let chunked = head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding: chunked"));
    let body = if chunked { dechunk(body) } else { body.to_string() };
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Response { status, headers, body })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
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
