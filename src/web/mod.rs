//! HTTP routes. Handlers validate input, send one message to an actor and shape the
//! reply; they hold no state of their own beyond the response cache.

pub mod auth;
pub mod cache;
pub mod charts;
pub mod cors;
pub mod csrf;
pub mod error;
pub mod guard;
pub mod head_limit;
pub mod openapi;
pub mod page;
pub mod params;
pub mod session;
pub mod timing;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use citecast_actors::Engine;

use crate::accounts::tiers::Tiers;
use crate::config::{Config, Deprecation};
use error::ApiError;

/// A rendered response body with its validator and the data generation it reflects.
#[derive(Clone)]
pub struct CachedBody {
    pub generation: u64,
    pub body: Bytes,
    pub etag: String,
    /// The model version that produced it (forecasts).
    pub model: Option<String>,
}

/// Shared by every worker.
pub struct AppState {
    pub engine: Engine,
    /// Customers and keys (`accounts::store`).
    pub accounts: Arc<dyn crate::accounts::AccountStore>,
    /// The newsletter's issues (`newsletter::store`).
    pub issues: Arc<dyn crate::newsletter::store::IssueStore>,
    /// Subscriptions, invoices and payments (`billing::store`).
    pub billing: Arc<crate::billing::Billing>,
    /// Outgoing mail (`outbound::mail`): SMTP, or the outbox when none is configured.
    pub mailer: Arc<crate::outbound::mail::Mailer>,
    /// What the web pages and forms need: base URL, cookie and CSRF secrets.
    pub site: Site,
    /// Web sessions (`web::session`), for the middleware and for ending a customer's
    /// sessions after a password reset.
    pub sessions: session::SledSessions,
    /// Web logins and the single-use tokens of confirmation and reset mails.
    pub logins: crate::accounts::Logins,
    /// Limits on the sign-up, sign-in and reset forms (per IP and per address).
    pub form_limits: crate::accounts::limits::FormLimits,
    /// Customers whose first API call is already recorded (saves a store read per call).
    pub first_calls: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Each customer's latest failed API calls, for the account page (memory only).
    pub recent_errors: quick_cache::sync::Cache<String, Vec<guard::RecentError>>,
    /// Rate limits and daily quotas per caller (`accounts::limits`), checked inline by
    /// the API guard.
    pub limits: crate::accounts::limits::SharedLimits,
    /// Persists and sweeps `limits`; answers usage questions (`UsedToday`, `FlushUsage`).
    pub limiter: actix::Addr<crate::accounts::limits::LimiterActor>,
    pub ready: Arc<AtomicBool>,
    /// False while the first start warms the forecast models: forecasts then answer 503
    /// `warming_up` at once instead of waiting on the warm-up.
    pub models_warm: AtomicBool,
    /// Rendered paper responses keyed by the requested id, tagged with the store
    /// generation they were rendered at (a write invalidates them all at once).
    pub paper_cache: quick_cache::sync::Cache<String, CachedBody>,
    /// Rendered forecasts keyed by `mode:id`, invalidated like the paper cache.
    pub forecast_cache: quick_cache::sync::Cache<String, CachedBody>,
    /// Authentication results by key hash, tagged with the accounts version they were
    /// read at (a revocation or tier change invalidates them all at once).
    pub key_cache: quick_cache::sync::Cache<Vec<u8>, (u64, guard::CachedAuth)>,
    /// Token for `/admin`; `None` disables the admin endpoints.
    pub admin_token: Option<String>,
    pub max_body_bytes: usize,
    pub tiers: Tiers,
    pub in_flight: AtomicUsize,
    pub max_in_flight: usize,
    /// Requests in flight per caller (customer id or `ip:<addr>`), bounded by
    /// `max_in_flight_per_caller` so one caller cannot hold every global slot.
    pub caller_slots: guard::CallerSlots,
    pub body_read_timeout: std::time::Duration,
    pub request_timeout: std::time::Duration,
    pub deprecations: Vec<Deprecation>,
    /// Origins whose pages may call `/v1` from a browser (`*`: any; empty: none).
    pub cors_origins: Vec<String>,
    /// Shared with the monitor, which samples it.
    pub metrics: Arc<crate::ops::metrics::Metrics>,
    /// The job scheduler (absent in tests that build the App without one).
    pub jobs: Option<actix::Addr<crate::ops::jobs::Scheduler>>,
    /// Unix seconds the server started, for uptime.
    pub started_at: i64,
    /// The monitor (alerts, SLOs, charts); set once the server has started it.
    pub monitor: std::sync::OnceLock<actix::Addr<crate::ops::monitor::Monitor>>,
    /// Where models trained on the live store are written (`DATA_DIR/models`, one of the
    /// directories the engine loads models from).
    pub models_dir: std::path::PathBuf,
}

impl AppState {
    pub fn new(
        engine: Engine,
        accounts: Arc<dyn crate::accounts::AccountStore>,
        config: &Config,
        admin_token: Option<String>,
    ) -> AppState {
        // Daily counts live in the engine's `usage` tree, which its journal archives.
        let usage = engine.db.open_tree("usage").expect("the store's usage tree opens");
        let limits = crate::accounts::limits::SharedLimits::new(crate::accounts::limits::Limits::new(
            &config.tiers.limits(),
            usage,
        ));
        let limiter = actix::Actor::start(crate::accounts::limits::LimiterActor::new(limits.clone()));
        let issues = crate::newsletter::store::SledIssues::open(&engine.db)
            .expect("the store's newsletter tree opens");
        let billing = crate::billing::Billing::open(&engine.db).expect("the store's billing trees open");
        let mailer = config.mailer().expect("the mail settings were checked at start");
        let site = Site::new(&engine.db, config).expect("the store's site secret opens");
        let sessions = session::SledSessions::open(&engine.db).expect("the store's session tree opens");
        let logins = crate::accounts::Logins::open(&engine.db).expect("the store's login trees open");
        AppState {
            models_dir: config.data_dir.join("models"),
            logins,
            form_limits: crate::accounts::limits::FormLimits::default(),
            first_calls: std::sync::Mutex::new(std::collections::HashSet::new()),
            recent_errors: quick_cache::sync::Cache::new(10_000),
            sessions,
            billing: Arc::new(billing),
            mailer: Arc::new(mailer),
            site,
            limits,
            limiter,
            issues: Arc::new(issues),
            engine,
            accounts,
            ready: Arc::new(AtomicBool::new(false)),
            models_warm: AtomicBool::new(true),
            paper_cache: quick_cache::sync::Cache::new(config.paper_cache_entries.max(1)),
            forecast_cache: quick_cache::sync::Cache::new(config.paper_cache_entries.max(1)),
            key_cache: quick_cache::sync::Cache::new(10_000),
            admin_token,
            max_body_bytes: config.max_body_bytes,
            tiers: config.tiers.clone(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: config.max_in_flight,
            caller_slots: guard::CallerSlots::new(config.max_in_flight_per_caller),
            body_read_timeout: config.body_read_timeout,
            request_timeout: config.request_timeout,
            deprecations: config.deprecations.clone(),
            cors_origins: config.cors_origins.clone(),
            metrics: Arc::new(crate::ops::metrics::Metrics::default()),
            jobs: None,
            started_at: citecast_actors::dates::now_secs(),
            monitor: std::sync::OnceLock::new(),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Fails with 503 `warming_up` while the first start warms the models.
    pub fn require_warm_models(&self) -> Result<(), ApiError> {
        if self.models_warm.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(ApiError::WarmingUp)
        }
    }

    /// Fails with 503 until the data and index are loaded.
    pub fn require_ready(&self) -> Result<(), ApiError> {
        if self.is_ready() {
            Ok(())
        } else {
            Err(ApiError::NotReady)
        }
    }
}

/// The client's address as limits and logs key it ("unknown" without a peer address).
pub fn client_ip(peer: Option<std::net::SocketAddr>) -> String {
    peer.map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

/// Unix seconds now (one clock for pages and sessions).
pub fn session_now() -> i64 {
    citecast_actors::dates::now_secs()
}

/// What pages, forms and mail links need to know about the site.
#[derive(Clone)]
pub struct Site {
    /// `http://host:port` or the configured public URL, without a trailing slash.
    pub base_url: String,
    /// Cookies get `Secure` when the public URL is https.
    pub secure_cookies: bool,
    /// 32 random bytes kept in the store (`meta/site_secret`): signs CSRF tokens and the
    /// session cookie, and survives restarts and restores.
    pub secret: Vec<u8>,
    /// Secrets of the payment provider's webhook signatures.
    pub webhook_secrets: Vec<Vec<u8>>,
    /// Secrets of the mail provider's bounce and complaint webhook.
    pub mail_webhook_secrets: Vec<Vec<u8>>,
}

impl Site {
    pub fn new(db: &sled::Db, config: &Config) -> Result<Site, sled::Error> {
        let meta = db.open_tree(citecast_actors::migrate::META_TREE)?;
        let secret = match meta.get("site_secret")? {
            Some(s) if s.len() >= 32 => s.to_vec(),
            _ => {
                let fresh = crate::accounts::random_base62(64).into_bytes();
                // Two servers never share a store, but keep the first secret if a racing
                // writer got there first.
                let _ =
                    meta.compare_and_swap("site_secret", None as Option<&[u8]>, Some(fresh.as_slice()))?;
                meta.get("site_secret")?.map(|s| s.to_vec()).unwrap_or(fresh)
            }
        };
        let base_url = config.base_url();
        Ok(Site {
            secure_cookies: base_url.starts_with("https://"),
            base_url,
            secret,
            webhook_secrets: config.payment_webhook_secrets.iter().map(|s| s.as_bytes().to_vec()).collect(),
            mail_webhook_secrets: config.mail_webhook_secrets.iter().map(|s| s.as_bytes().to_vec()).collect(),
        })
    }
}

/// A route answering GET and HEAD alike: every GET route answers HEAD with the same
/// status and headers (actix-http sends no body for a HEAD request).
pub fn get_or_head() -> actix_web::Route {
    use actix_web::guard;
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// One registered route and the OpenAPI operations it serves.
pub struct Endpoint {
    pub path: &'static str,
    pub route: fn() -> actix_web::Route,
    pub ops: &'static [openapi::Op],
}

/// Every `/v1` route, from the features' lists. Registration and the OpenAPI document
/// both read this, so a route cannot exist undocumented.
pub fn v1_endpoints() -> Vec<Endpoint> {
    [
        crate::search::routes::endpoints(),
        crate::papers::routes::endpoints(),
        crate::forecasts::routes::endpoints(),
        crate::accounts::routes::endpoints(),
        openapi::endpoints(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Registers every route; used by `serve` and by the tests, so both run the same app.
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    let limit = state.max_body_bytes;
    let mut v1 = web::scope("/v1")
        .wrap(actix_web::middleware::from_fn(guard::guard))
        .wrap(actix_web::middleware::from_fn(guard::shed))
        .wrap(actix_web::middleware::from_fn(cors::cors));
    for e in v1_endpoints() {
        v1 = v1.route(e.path, (e.route)());
    }
    // Pages and forms get sessions and the HTML security headers; /v1 gets neither
    // (keys travel in a header, never in cookies).
    let mut site = web::scope("")
        .wrap(session::middleware(&state.site, state.sessions.clone()))
        .wrap(actix_web::middleware::from_fn(session::page_headers));
    for r in site_routes() {
        site = site.route(r.path, (r.route)());
    }
    cfg.app_data(state)
        .app_data(
            web::JsonConfig::default().limit(limit).error_handler(move |e, _| error::json_error(e, limit)),
        )
        .app_data(web::PayloadConfig::new(limit));
    cfg.service(v1).service(site.default_service(web::to(no_route))).default_service(web::to(no_route));
}

/// A route outside `/v1`: its path pattern, method and handler.
pub struct SiteRoute {
    pub path: &'static str,
    pub method: &'static str,
    pub route: fn() -> actix_web::Route,
}

impl SiteRoute {
    /// A GET route (answering HEAD too, see [`get_or_head`]).
    pub fn get(path: &'static str, route: fn() -> actix_web::Route) -> SiteRoute {
        SiteRoute { path, method: "GET", route }
    }

    pub fn post(path: &'static str, route: fn() -> actix_web::Route) -> SiteRoute {
        SiteRoute { path, method: "POST", route }
    }
}

/// Every route outside `/v1`, from the features' lists. Registration and the `Allow`
/// header of 405s read this.
fn site_routes() -> Vec<SiteRoute> {
    [
        crate::ops::routes::site_routes(),
        crate::papers::routes::site_routes(),
        crate::forecasts::routes::site_routes(),
        crate::newsletter::routes::site_routes(),
        crate::billing::routes::site_routes(),
        crate::accounts::routes::site_routes(),
        crate::home::routes::site_routes(),
        crate::pricing::routes::site_routes(),
        crate::growth::routes::site_routes(),
        crate::referrals::routes::site_routes(),
        crate::contests::routes::site_routes(),
        crate::community::routes::site_routes(),
        crate::webhooks::routes::site_routes(),
        crate::support::routes::site_routes(),
        crate::economics::routes::site_routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The methods some route answers at `path`, in a stable order (empty: no such path).
fn allowed_methods(path: &str) -> Vec<&'static str> {
    use actix_web::dev::ResourceDef;
    let mut methods: Vec<&'static str> = Vec::new();
    let site = site_routes().into_iter().map(|r| (r.path.to_string(), r.method));
    let api = v1_endpoints().into_iter().flat_map(|e| {
        // One registered path may serve several documented operations (papers/{tail}).
        let method = e.ops.first().map(|o| o.method).unwrap_or("GET");
        std::iter::once((format!("/v1{}", e.path), method))
    });
    for (pattern, method) in site.chain(api) {
        if ResourceDef::new(pattern.as_str()).is_match(path) {
            let also = (method == "GET").then_some("HEAD");
            for m in std::iter::once(method).chain(also) {
                if !methods.contains(&m) {
                    methods.push(m);
                }
            }
        }
    }
    methods.sort_unstable();
    methods
}
/// 405 with `Allow` when the path exists under other methods, else 404.
async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let allowed = allowed_methods(req.path());
    let method = crate::ops::metrics::method_label(req.method()).to_string();
    if allowed.is_empty() {
        Err(ApiError::NoRoute { method, path: req.path().to_string() })
    } else {
        Err(ApiError::MethodNotAllowed { method, path: req.path().to_string(), allowed })
    }
}
