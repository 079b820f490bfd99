//! The server's configuration, in one place. Every setting has a CLI flag and an
//! environment variable (`CITECAST_*`); defaults suit a laptop.

use std::path::PathBuf;

use citecast_actors::EngineConfig;

use crate::accounts::tiers::Tiers;

/// A route being retired: responses under `path_prefix` carry `Deprecation`, `Sunset`
/// and a `Link` to the migration notes (see docs/api-versioning.md).
#[derive(Debug, Clone)]
pub struct Deprecation {
    pub path_prefix: String,
    /// Unix seconds when it was deprecated.
    pub deprecated_at: i64,
    /// Unix seconds after which it may stop answering.
    pub sunset_at: i64,
    pub link: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the store (`store/`), the index (`index/`) and `server.json` live.
    pub data_dir: PathBuf,
    /// Whether the user named the data directory (false: the default was taken), so
    /// commands can refuse to create a store where nobody asked for one.
    pub data_dir_given: bool,
    /// Address the HTTP server binds.
    pub addr: String,
    /// The bundled dataset imported into an empty data directory.
    pub bundled_data: PathBuf,
    /// HTTP worker threads.
    pub workers: usize,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// sled page cache; 0 sizes it from the store (`StoreConfig::cache_for`).
    pub store_cache_bytes: u64,
    /// Paper responses kept rendered in memory.
    pub paper_cache_entries: usize,
    /// API tiers and their limits.
    pub tiers: Tiers,
    /// Requests handled at once under /v1 before new ones get 503 (load shedding).
    pub max_in_flight: usize,
    /// /v1 requests one caller (a customer, or an anonymous IP) may have in flight.
    pub max_in_flight_per_caller: usize,
    /// Longest a client may take to send its request body (answered with 408 after).
    pub body_read_timeout: std::time::Duration,
    /// Longest a /v1 request may take, once its body is read, before it is answered with 503.
    pub request_timeout: std::time::Duration,
    /// Routes being retired.
    pub deprecations: Vec<Deprecation>,
    /// Where the scheduled backup job writes, and how many of its files it keeps.
    pub backup_dir: PathBuf,
    pub backup_keep: usize,
    /// Forecast and usage records older than this move to the archive.
    pub archive_after_days: u32,
    /// How often the monitor samples metrics and evaluates alert rules.
    pub monitor_interval: std::time::Duration,
    /// `https://host/path` (or `http://`) that receives alert transitions as JSON.
    pub alert_webhook: Option<String>,
    /// A paper record listing more references than this is rejected at import.
    pub max_refs_per_paper: usize,
    /// Origins whose pages may call `/v1` from a browser (`*`: any, the default; empty:
    /// none). Keys travel in a header, never cookies, so `*` lends nothing to other sites.
    pub cors_origins: Vec<String>,
    /// `smtp://host:port` (or `smtps://`, `smtp://user:pass@host?tls=required`) for
    /// outgoing mail; `None` writes mail to `DATA_DIR/outbox` instead.
    pub smtp_url: Option<String>,
    /// The `From` of outgoing mail.
    pub mail_from: String,
    /// The address people reach this server at (`https://citecast.example`), for links
    /// in mail and the same-origin check of forms; default `http://ADDR`.
    pub public_url: Option<String>,
    /// Secrets of the payment provider's webhook (several during a rotation).
    pub payment_webhook_secrets: Vec<String>,
    /// Secrets of the mail provider's bounce and complaint webhook.
    pub mail_webhook_secrets: Vec<String>,
    /// Newsletter messages sent per minute at most.
    pub newsletter_rate_per_minute: u32,
    /// DKIM signing of outgoing mail: key file, selector, domain.
    pub dkim: Option<(PathBuf, String, String)>,
    /// `serve --demo`: seed (or serve) a directory of synthetic business data.
    pub demo: bool,
}

impl Config {
    pub fn new(data_dir: PathBuf) -> Config {
        Config {
            addr: "127.0.0.1:8080".into(),
            bundled_data: default_bundled_data(),
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            max_body_bytes: 64 * 1024,
            store_cache_bytes: 0,
            paper_cache_entries: 32_768,
            tiers: Tiers::builtin(),
            max_in_flight: 256,
            max_in_flight_per_caller: 32,
            body_read_timeout: std::time::Duration::from_secs(5),
            request_timeout: std::time::Duration::from_secs(10),
            deprecations: Vec::new(),
            backup_dir: data_dir.join("backups"),
            backup_keep: 7,
            archive_after_days: 90,
            monitor_interval: std::time::Duration::from_secs(10),
            alert_webhook: None,
            max_refs_per_paper: citecast_actors::ingest::DEFAULT_MAX_REFS_PER_PAPER,
            cors_origins: vec!["*".into()],
            smtp_url: None,
            mail_from: "citecast <noreply@citecast.localhost>".into(),
            public_url: None,
            payment_webhook_secrets: Vec::new(),
            mail_webhook_secrets: Vec::new(),
            newsletter_rate_per_minute: 6000,
            dkim: None,
            demo: false,
            data_dir_given: true,
            data_dir,
        }
    }

    pub fn monitor(&self) -> crate::ops::monitor::MonitorConfig {
        crate::ops::monitor::MonitorConfig {
            data_dir: self.data_dir.clone(),
            interval: self.monitor_interval,
            webhook: self.alert_webhook.clone(),
        }
    }

    pub fn jobs(&self) -> crate::ops::jobs::JobsConfig {
        crate::ops::jobs::JobsConfig {
            data_dir: self.data_dir.clone(),
            backup_dir: self.backup_dir.clone(),
            backup_keep: self.backup_keep,
            archive_after_days: self.archive_after_days,
            bundled_data: self.bundled_data.clone(),
            alert_webhook: self.alert_webhook.clone(),
        }
    }

    pub fn engine(&self) -> EngineConfig {
        let mut e = EngineConfig::new(&self.data_dir);
        e.store.cache_bytes = self.store_cache_bytes;
        e.model_dirs = vec![crate::forecasts::training::default_models_dir(), self.data_dir.join("models")];
        e.ingest.max_refs_per_paper = self.max_refs_per_paper;
        e
    }

    /// Where links in mail and pages point, without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.addr),
        }
    }

    /// The mailer these settings describe (SMTP or the outbox, DKIM when configured).
    pub fn mailer(&self) -> Result<crate::outbound::mail::Mailer, crate::outbound::mail::MailError> {
        let mailer = crate::outbound::mail::Mailer::new(
            self.smtp_url.as_deref(),
            &self.mail_from,
            &self.outbox_dir(),
        )?;
        match &self.dkim {
            Some((key, selector, domain)) => {
                let key_pem = std::fs::read_to_string(key).map_err(|e| {
                    crate::outbound::mail::MailError::Invalid(format!("DKIM key {}: {e}", key.display()))
                })?;
                mailer.with_dkim(crate::outbound::mail::Dkim {
                    key_pem,
                    selector: selector.clone(),
                    domain: domain.clone(),
                })
            }
            None => Ok(mailer),
        }
    }

    /// Mail written instead of sent when no SMTP server is configured.
    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    pub fn store_path_exists(&self) -> bool {
        self.engine().store_path().exists()
    }

    /// Written by a running server so operator commands can find it.
    pub fn server_file(&self) -> PathBuf {
        self.data_dir.join("server.json")
    }
}

/// `./data` when run from a checkout, else the data directory of the source tree the
/// binary was built from.
pub fn default_bundled_data() -> PathBuf {
    let local = PathBuf::from("data");
    if local.join("papers.jsonl.gz").exists() {
        local
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
    }
}
