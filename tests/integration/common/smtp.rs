//! A real local SMTP server for the tests: aiosmtpd (PyPI) run by `support/smtp_sink.py`,
//! writing each accepted message to a directory. `.ci/run` installs aiosmtpd and sets
//! `CITECAST_REQUIRE_SMTP=1`, which turns a missing aiosmtpd into a failure; elsewhere a
//! test using it is skipped, saying so.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aiosmtpd_available() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl SmtpSink {
    /// A sink listening on a free port, or `None` (test skipped) without aiosmtpd.
    pub fn start() -> Option<SmtpSink> {
        if !aiosmtpd_available() {
            assert!(
                std::env::var_os("CITECAST_REQUIRE_SMTP").is_none(),
                "CITECAST_REQUIRE_SMTP is set but python3 cannot import aiosmtpd (pip install aiosmtpd)"
            );
            eprintln!("SKIPPED: python3 cannot import aiosmtpd (pip install aiosmtpd)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/integration/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        Some(SmtpSink { child, port, dir })
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// How many messages arrived so far (cheap: counts files, reads none).
    pub fn count(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .map(|d| {
                d.filter_map(|e| e.ok()).filter(|e| e.path().extension().is_some_and(|x| x == "eml")).count()
            })
            .unwrap_or(0)
    }

    /// The raw messages received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let p = e.path();
                let n = p.file_stem()?.to_str()?.parse().ok()?;
                (p.extension()? == "eml").then_some((n, p))
            })
            .collect();
        files.sort();
        files.into_iter().map(|(_, p)| std::fs::read_to_string(p).unwrap_or_default()).collect()
    }

    /// Waits (at most 20 s) for a message to `to` whose text contains `needle`.
    pub fn wait_for(&self, to: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(m) =
                self.messages().into_iter().find(|m| m.contains(&format!("To: {to}")) && m.contains(needle))
            {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no mail to {to} containing '{needle}': {:?}",
                self.messages()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The first `http…` link in a mail's text that contains `needle`, with quoted-printable
/// soft line breaks undone.
pub fn link_in(mail: &str, needle: &str) -> String {
    let text = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    text.split_whitespace()
        .find(|w| w.starts_with("http") && w.contains(needle))
        .unwrap_or_else(|| panic!("no link with '{needle}' in {text}"))
        .trim_end_matches(['.', ',', ')', '>'])
        .to_string()
}

/// A header's value, unfolded (long headers continue on lines starting with blanks).
pub fn header(mail: &str, name: &str) -> Option<String> {
    let head = mail.split("\r\n\r\n").next().unwrap_or(mail);
    let mut lines = head.lines().skip_while(|l| !l.starts_with(&format!("{name}: ")));
    let mut value = lines.next()?.split_once(": ")?.1.to_string();
    for l in lines.take_while(|l| l.starts_with([' ', '\t'])) {
        value.push(' ');
        value.push_str(l.trim());
    }
    Some(value)
}
