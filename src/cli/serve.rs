//! `citecast serve`: the server's options, turned into its configuration.

use std::path::PathBuf;
use std::time::Duration;

use super::{CliError, DataDir};
use crate::server;

/// The options of `serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub dir: DataDir,
    /// Address to listen on.
    #[arg(long, env = "CITECAST_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Directory with the bundled papers.jsonl.gz and citations_dated.tsv.gz.
    #[arg(long, env = "CITECAST_BUNDLED_DATA")]
    pub bundled_data: Option<PathBuf>,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "CITECAST_WORKERS")]
    pub workers: Option<usize>,
    /// Where the daily backup job writes (default: DATA_DIR/backups; best on another disk).
    #[arg(long, env = "CITECAST_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Scheduled backups kept.
    #[arg(long, env = "CITECAST_BACKUP_KEEP", default_value_t = 7)]
    pub backup_keep: usize,
    /// Forecast and usage records older than this many days move to the archive.
    #[arg(long, env = "CITECAST_ARCHIVE_AFTER_DAYS", default_value_t = 90)]
    pub archive_after_days: u32,
    /// https://host/path (or http://) receiving alert transitions (firing, resolved) as
    /// JSON; 5 s timeout, two retries with backoff.
    #[arg(long, env = "CITECAST_ALERT_WEBHOOK")]
    pub alert_webhook: Option<String>,
    /// Seconds between metric samples and alert evaluations.
    #[arg(long, env = "CITECAST_MONITOR_INTERVAL", default_value_t = 10)]
    pub monitor_interval: u64,
    /// sled's page cache in MiB; 0 sizes it from the store: a quarter of its size on disk,
    /// between 64 MiB and 1 GiB.
    #[arg(long, env = "CITECAST_STORE_CACHE_MB", default_value_t = 0)]
    pub store_cache_mb: u64,
    /// /v1 requests handled at once before new ones get 503 (all callers together).
    #[arg(long, env = "CITECAST_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
    /// /v1 requests one customer (or one anonymous IP) may have in flight at once;
    /// more get 429, so one caller cannot take every slot.
    #[arg(long, env = "CITECAST_MAX_IN_FLIGHT_PER_CALLER", default_value_t = 32)]
    pub max_in_flight_per_caller: usize,
    /// Seconds a client has to send its whole request body; a body still arriving
    /// then gets 408. Bodies are read before a request counts as in flight.
    #[arg(long, env = "CITECAST_BODY_READ_TIMEOUT", default_value_t = 5)]
    pub body_read_timeout: u64,
    /// Seconds a /v1 request may take once its body is read before it gets 503.
    #[arg(long, env = "CITECAST_REQUEST_TIMEOUT", default_value_t = 10)]
    pub request_timeout: u64,
    /// Origins whose web pages may call /v1 from a browser, comma-separated
    /// (https://app.example.org), `*` for any, `none` for no cross-origin calls.
    #[arg(long, env = "CITECAST_CORS_ORIGINS", default_value = "*")]
    pub cors_origins: String,
    /// A paper record listing more references than this is rejected (reported with
    /// its line); the rest of the file is imported.
    #[arg(long, env = "CITECAST_MAX_REFS_PER_PAPER", default_value_t = citecast_actors::ingest::DEFAULT_MAX_REFS_PER_PAPER, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_refs_per_paper: usize,
    /// SMTP server for outgoing mail (confirmations, resets, receipts, the newsletter):
    /// `smtp://127.0.0.1:2525` (plain), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS) or `smtps://host:465`. Unset: mail is written to DATA_DIR/outbox.
    #[arg(long, env = "CITECAST_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// The From address of outgoing mail.
    #[arg(long, env = "CITECAST_MAIL_FROM", default_value = "citecast <noreply@citecast.localhost>")]
    pub mail_from: String,
    /// The address people reach this server at, e.g. https://citecast.example (links in
    /// mail, the same-origin check of forms, Secure cookies when https). Default: http://ADDR.
    #[arg(long, env = "CITECAST_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Secret(s) of the payment provider's webhook signatures, comma-separated (two
    /// during a rotation). Unset: POST /webhooks/payments answers 503.
    #[arg(long, env = "CITECAST_PAYMENT_WEBHOOK_SECRET")]
    pub payment_webhook_secret: Option<String>,
    /// Secret(s) of the mail provider's bounce/complaint webhook (POST /webhooks/mail),
    /// comma-separated. Unset: that webhook answers 503.
    #[arg(long, env = "CITECAST_MAIL_WEBHOOK_SECRET")]
    pub mail_webhook_secret: Option<String>,
    /// Newsletter messages sent per minute at most (the rest wait their turn).
    #[arg(long, env = "CITECAST_NEWSLETTER_RATE", default_value_t = 6000, value_parser = clap::value_parser!(u32).range(1..))]
    pub newsletter_rate: u32,
    /// Sign outgoing mail with DKIM: the private key file (PEM RSA, or a base64 Ed25519
    /// seed); needs --dkim-selector, and --dkim-domain unless the sender's domain is meant.
    #[arg(long, env = "CITECAST_DKIM_KEY", requires = "dkim_selector")]
    pub dkim_key: Option<PathBuf>,
    /// The DKIM selector (the DNS record is SELECTOR._domainkey.DOMAIN).
    #[arg(long, env = "CITECAST_DKIM_SELECTOR")]
    pub dkim_selector: Option<String>,
    /// The DKIM signing domain (default: the domain of --mail-from).
    #[arg(long, env = "CITECAST_DKIM_DOMAIN")]
    pub dkim_domain: Option<String>,
    /// Seed an empty data directory with a year of synthetic, clearly marked customers,
    /// subscriptions, invoices and costs, so every business page shows computed figures.
    /// Refuses a directory that holds real customers.
    #[arg(long)]
    pub demo: bool,
}

pub fn serve(args: ServeArgs) -> Result<(), CliError> {
    let ServeArgs {
        dir,
        addr,
        bundled_data,
        workers,
        backup_dir,
        backup_keep,
        archive_after_days,
        alert_webhook,
        monitor_interval,
        store_cache_mb,
        max_in_flight,
        max_in_flight_per_caller,
        body_read_timeout,
        request_timeout,
        max_refs_per_paper,
        cors_origins,
        smtp_url,
        mail_from,
        public_url,
        payment_webhook_secret,
        mail_webhook_secret,
        newsletter_rate,
        dkim_key,
        dkim_selector,
        dkim_domain,
        demo,
    } = args;
    let mut config = dir.config()?;
    config.cors_origins = match cors_origins.trim() {
        "none" | "" => Vec::new(),
        list => list
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect(),
    };
    config.max_refs_per_paper = max_refs_per_paper;
    config.smtp_url = smtp_url.filter(|u| !u.trim().is_empty());
    config.mail_from = mail_from;
    config.public_url = public_url.filter(|u| !u.trim().is_empty());
    config.payment_webhook_secrets = payment_webhook_secret
        .map(|s| s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    config.mail_webhook_secrets = mail_webhook_secret
        .map(|s| s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    config.newsletter_rate_per_minute = newsletter_rate;
    config.demo = demo;
    if let Some(key) = dkim_key {
        let domain = dkim_domain.unwrap_or_else(|| {
            config.mail_from.rsplit('@').next().unwrap_or_default().trim_end_matches('>').to_string()
        });
        config.dkim = Some((key, dkim_selector.unwrap_or_default(), domain));
    }
    config.store_cache_bytes = store_cache_mb.saturating_mul(1024 * 1024);
    config.max_in_flight = max_in_flight.max(1);
    config.max_in_flight_per_caller = max_in_flight_per_caller.max(1);
    config.body_read_timeout = Duration::from_secs(body_read_timeout.max(1));
    config.request_timeout = Duration::from_secs(request_timeout.max(1));
    config.addr = addr;
    if let Some(b) = backup_dir {
        config.backup_dir = b;
    }
    config.backup_keep = backup_keep.max(1);
    config.archive_after_days = archive_after_days.max(1);
    config.alert_webhook = alert_webhook;
    config.monitor_interval = Duration::from_secs(monitor_interval.max(1));
    if let Some(b) = bundled_data {
        config.bundled_data = b;
    }
    if let Some(w) = workers {
        config.workers = w.max(1);
    }
    actix_web::rt::System::new().block_on(server::serve(config))
}
