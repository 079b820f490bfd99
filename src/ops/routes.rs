//! `/status` (public: uptime, SLOs with error-budget burn, alerts, incidents, job
//! health) and `/admin/dashboard` (the same figures as server-rendered SVG charts).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use citecast_actors::dates;
use citecast_actors::dates::now_secs;
use serde_json::json;

use std::sync::atomic::Ordering;

use crate::ops::alerts::AlertStatus;
use crate::ops::monitor::{GetView, MonitorView};
use crate::web::auth::Admin;
use crate::web::error::ApiError;
use crate::web::AppState;
use crate::web::{get_or_head, SiteRoute};

fn when(secs: i64) -> String {
    let day = dates::day_of_secs(secs);
    let s = secs.rem_euclid(86_400);
    format!("{} {:02}:{:02}", dates::format(day), s / 3600, s / 60 % 60)
}

fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7_199 => format!("{} min", s / 60),
        7_200..=172_799 => format!("{:.1} h", s as f64 / 3600.0),
        _ => format!("{:.1} days", s as f64 / 86_400.0),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.3}%", v * 100.0)).unwrap_or_else(|| "no traffic".into())
}

struct SloRow {
    name: String,
    target: String,
    attained: String,
    spent: String,
    burn: String,
    status: &'static str,
}

struct AlertRow {
    name: String,
    state: &'static str,
    value: String,
    threshold: String,
    runbook: String,
}

struct IncidentRow {
    alert: String,
    severity: &'static str,
    fired: String,
    resolved: String,
    peak: String,
}

struct JobRow {
    name: String,
    schedule: String,
    last: String,
    last_at: String,
    next: String,
    failures: u64,
    health: &'static str,
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    uptime: String,
    uptime_24h: String,
    started: String,
    ready: bool,
    firing: Vec<String>,
    slos: Vec<SloRow>,
    alerts: Vec<AlertRow>,
    incidents: Vec<IncidentRow>,
    imports_running: usize,
    imports_incomplete: usize,
}

fn number(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

fn alert_rows(alerts: &[AlertStatus]) -> Vec<AlertRow> {
    alerts
        .iter()
        .map(|a| AlertRow {
            name: a.rule.clone(),
            state: a.state.as_str(),
            value: a.value.map(number).unwrap_or_else(|| "-".into()),
            threshold: number(a.threshold),
            runbook: a.runbook.clone(),
        })
        .collect()
}

async fn view(state: &AppState, chart_secs: u64) -> Result<MonitorView, ApiError> {
    let monitor = state.monitor.get().ok_or_else(|| ApiError::internal("the monitor is not running"))?;
    monitor.send(GetView { chart_secs }).await?.map_err(ApiError::internal)
}

/// `GET /status` (`?format=json` for the JSON).
pub async fn status(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let v = view(&state, 0).await?;
    let now = now_secs();
    // Counts only: file names are the operator's business (`citecast stats`, /admin/stats).
    let imports = state.engine.store.send(citecast_actors::actors::ListImports).await??;
    let (running, incomplete) = crate::papers::split_imports(imports);
    // Internal jobs are the operator's business: they are on the dashboard, not here.
    if req.query_string().contains("format=json") {
        return Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(json!({
            "uptime_secs": now - state.started_at,
            "uptime_24h": v.uptime_24h,
            "uptime_observed_secs": v.uptime_observed_secs,
            "ready": state.is_ready(),
            "imports": { "running": running.len(), "incomplete": incomplete.len() },
            "slos": v.slos,
            "alerts": v.alerts,
            "incidents": v.incidents,
        })));
    }
    let page = StatusPage {
        uptime: duration(now - state.started_at),
        uptime_24h: match (v.uptime_24h, v.uptime_observed_secs) {
            (Some(u), Some(observed)) if observed + 60 < 24 * 3600 => {
                format!("{:.3}% of the {} observed so far", u * 100.0, duration(observed as i64))
            }
            (Some(u), _) => format!("{:.3}% of the last 24 hours", u * 100.0),
            _ => "not measured yet (too few samples)".into(),
        },
        started: when(state.started_at),
        ready: state.is_ready(),
        imports_running: running.len(),
        imports_incomplete: incomplete.len(),
        firing: v.alerts.iter().filter(|a| a.state.as_str() == "firing").map(|a| a.rule.clone()).collect(),
        slos: v
            .slos
            .iter()
            .map(|s| SloRow {
                name: s.name.clone(),
                target: format!("{}%", s.objective * 100.0),
                attained: pct(s.attained),
                spent: format!("{:.1}%", s.error_budget_spent_ratio * 100.0),
                burn: format!(
                    "{} / {}",
                    s.burn_rate_1h.map(|b| format!("{b:.2}")).unwrap_or_else(|| "-".into()),
                    s.burn_rate_6h.map(|b| format!("{b:.2}")).unwrap_or_else(|| "-".into())
                ),
                status: s.status.as_str(),
            })
            .collect(),
        alerts: alert_rows(&v.alerts),
        incidents: v
            .incidents
            .iter()
            .map(|i| IncidentRow {
                alert: i.alert.clone(),
                severity: i.severity.as_str(),
                fired: when(i.fired_at),
                resolved: i.resolved_at.map(when).unwrap_or_else(|| "ongoing".into()),
                peak: number(i.peak_value),
            })
            .collect(),
    };
    let html = page.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(html))
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    window: String,
    /// The token of the operator's log-out form.
    csrf: String,
    /// The store holds `serve --demo` data.
    demo: bool,
    charts: Vec<String>,
    /// Sign-ups, how many made a first call, and the median wait, in words.
    onboarding: String,
    /// NPS and tickets in words, and the latest survey comments.
    support: String,
    nps_comments: Vec<String>,
    /// Churn risk, pause→resume and win-back, from `retention::overview`.
    retention: crate::retention::Overview,
    /// Readers and the latest issue's delivery, in words.
    newsletter: String,
    /// Subscriptions by status, e.g. "active 3 · paused 1".
    subscriptions: String,
    /// (invoice, customer, issued, total, status) of the latest invoices.
    invoices: Vec<(String, String, String, String, String)>,
    alerts: Vec<AlertRow>,
    jobs: Vec<JobRow>,
    /// (version, mode, serving) of every loaded model, for links to their reports.
    models: Vec<(String, String, bool)>,
    rollouts: Vec<(String, String, String, String, u64, String, String)>,
}

/// `GET /admin/dashboard?hours=`: charts of the last hours (default 6, at most 24).
pub async fn dashboard(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: actix_session::Session,
) -> Result<HttpResponse, ApiError> {
    let p = crate::web::params::Params::parse(req.query_string(), &["hours"])?;
    let hours = p.int("hours", 6, 1, 24)?;
    let v = view(&state, hours as u64 * 3600).await?;
    let rollouts =
        crate::web::error::ask(&state.engine.model, citecast_actors::actors::ListRollouts, "model engine")
            .await??;
    let models =
        crate::web::error::ask(&state.engine.model, citecast_actors::actors::ListModels, "model engine")
            .await?;
    let jobs = match &state.jobs {
        Some(j) => Some(j.send(crate::ops::jobs::GetJobs { history: 0 }).await?.map_err(ApiError::internal)?),
        None => None,
    };
    let (logins, billing) = (state.logins.clone(), state.billing.clone());
    let readers = crate::newsletter::store::Subscribers::open(&state.engine.db).map_err(ApiError::from)?;
    let newsletter = actix_web::rt::task::spawn_blocking(move || {
        let counts = readers.counts().unwrap_or_default();
        let latest = readers.stats().unwrap_or_default().into_iter().next();
        let confirmed = counts.get("confirmed").copied().unwrap_or(0);
        match latest {
            Some((n, d)) => format!(
                "{confirmed} confirmed readers; issue #{n}: {} sent, {} queued, {} deferred, {} bounced, {} failed",
                d.sent, d.queued, d.deferred, d.bounced, d.failed
            ),
            None => format!("{confirmed} confirmed readers; nothing delivered yet"),
        }
    })
    .await
    .map_err(ApiError::internal)?;
    let (db, billing_r) = (state.engine.db.clone(), state.billing.clone());
    let (retention, nps, tickets) = actix_web::rt::task::spawn_blocking(move || {
        let open = crate::support::open_tickets_by_customer(&db).unwrap_or_default();
        let nps = crate::support::nps_summary(&db).ok();
        let tickets = crate::support::ticket_summary(&db).ok();
        (crate::retention::overview(&db, &billing_r, &open).unwrap_or_default(), nps, tickets)
    })
    .await
    .map_err(ApiError::internal)?;
    let support = format!(
        "NPS {} from {} answers ({} surveys sent); tickets: {} open, {} overdue, median first response {}",
        nps.as_ref().and_then(|n| n.score).map(|s| format!("{s:.0}")).unwrap_or_else(|| "–".into()),
        nps.as_ref().map(|n| n.responses).unwrap_or(0),
        nps.as_ref().map(|n| n.surveys_sent).unwrap_or(0),
        tickets.as_ref().map(|t| t.open).unwrap_or(0),
        tickets.as_ref().map(|t| t.overdue).unwrap_or(0),
        tickets
            .as_ref()
            .and_then(|t| t.median_first_response_secs)
            .map(duration)
            .unwrap_or_else(|| "–".into()),
    );
    let nps_comments: Vec<String> = nps
        .map(|n| {
            n.latest_comments.into_iter().take(5).map(|c| format!("{}: {}", c.score, c.comment)).collect()
        })
        .unwrap_or_default();
    let (pairs, subs, invoices) = actix_web::rt::task::spawn_blocking(move || {
        let pairs = logins.onboarding().unwrap_or_default();
        let subs = billing.subscriptions().unwrap_or_default();
        let mut invoices: Vec<crate::billing::Invoice> =
            subs.iter().flat_map(|s| billing.invoices(&s.customer_id).unwrap_or_default()).collect();
        invoices.sort_by_key(|i| std::cmp::Reverse(i.number));
        invoices.truncate(20);
        (pairs, subs, invoices)
    })
    .await
    .map_err(ApiError::internal)?;
    let o = crate::accounts::signin::onboarding(&pairs);
    let onboarding = format!(
        "{} web sign-ups, {} made a first API call{}",
        o.signups,
        o.with_first_call,
        o.median_secs_to_first_call
            .map(|s| format!(", after {} (median)", duration(s as i64)))
            .unwrap_or_default()
    );
    let mut by_status: std::collections::BTreeMap<String, usize> = Default::default();
    for s in &subs {
        *by_status.entry(format!("{:?}", s.status).to_lowercase()).or_default() += 1;
    }
    let subscriptions = if by_status.is_empty() {
        "none yet".to_string()
    } else {
        by_status.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(" · ")
    };
    let page = DashboardPage {
        window: duration(hours as i64 * 3600),
        csrf: crate::web::session::csrf_token(&session, &state.site),
        demo: crate::demo::is_seeded(&state.engine.db),
        onboarding,
        support,
        nps_comments,
        retention,
        newsletter,
        subscriptions,
        invoices: invoices
            .iter()
            .map(|i| {
                (
                    i.id.clone(),
                    i.customer_id.clone(),
                    citecast_actors::dates::format(i.issued),
                    crate::billing::format_money(i.total_minor, &i.currency),
                    i.status.label().to_string(),
                )
            })
            .collect(),
        models: models.iter().map(|m| (m.version.clone(), format!("{:?}", m.mode), m.active)).collect(),
        jobs: jobs
            .map(|r| {
                r.jobs
                    .into_iter()
                    .map(|j| {
                        let last = j
                            .last_outcome
                            .as_ref()
                            .map(|o| format!("{o:?}"))
                            .unwrap_or_else(|| "not run yet".into());
                        let health = match &j.last_outcome {
                            Some(citecast_actors::schedule::Outcome::Failed { .. }) => "breached",
                            _ if j.dead_letters > 0 => "at_risk",
                            _ => "ok",
                        };
                        JobRow {
                            last: if j.paused { format!("{last} (paused)") } else { last },
                            last_at: j.last_ended.map(when).unwrap_or_else(|| "-".into()),
                            next: when(j.next_due),
                            failures: j.failures_in_history as u64,
                            health,
                            name: j.name,
                            schedule: j.schedule.to_string(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),

        charts: v
            .series
            .iter()
            .map(|(label, unit, points)| crate::web::charts::sparkline_svg(points, 320, 90, label, unit))
            .collect(),
        alerts: alert_rows(&v.alerts),
        rollouts: rollouts
            .running
            .values()
            .map(|r| {
                (
                    r.id.clone(),
                    r.control.clone(),
                    r.candidate.clone(),
                    format!("{}%", r.share()),
                    r.candidate_stats.scored,
                    r.agreement().map(|a| format!("{:.1}%", a * 100.0)).unwrap_or_else(|| "-".into()),
                    r.drift_psi().map(|d| format!("{d:.3}")).unwrap_or_else(|| "-".into()),
                )
            })
            .collect(),
    };
    let html = page.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(html))
}

/// `GET /runbooks/{name}`: an alert's runbook (Markdown, shown as text).
pub async fn runbook(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let (_, text) = super::RUNBOOKS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or(ApiError::NotFound { what: "runbook", id: name.clone() })?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(*text))
}

/// Health, metrics, the status and dashboard pages, runbooks and the operator's store,
/// backup, job and audit endpoints.
pub fn site_routes() -> Vec<SiteRoute> {
    use super::admin;
    vec![
        SiteRoute::get("/healthz", || get_or_head().to(healthz)),
        SiteRoute::get("/metrics", || get_or_head().to(metrics)),
        SiteRoute::get("/readyz", || get_or_head().to(readyz)),
        SiteRoute::get("/status", || get_or_head().to(status)),
        SiteRoute::get("/runbooks/{name}", || get_or_head().to(runbook)),
        SiteRoute::get("/admin/dashboard", || get_or_head().to(dashboard)),
        SiteRoute::get("/admin/login", || get_or_head().to(super::page::login_form)),
        SiteRoute::post("/admin/login", || web::post().to(super::page::login)),
        SiteRoute::post("/admin/logout", || web::post().to(super::page::logout)),
        SiteRoute::get("/admin/stats", || get_or_head().to(admin::stats)),
        SiteRoute::post("/admin/op", || web::post().to(admin::op)),
        SiteRoute::post("/admin/backup", || web::post().to(admin::backup)),
        SiteRoute::get("/admin/audit", || get_or_head().to(admin::audit_log)),
        SiteRoute::get("/admin/jobs", || get_or_head().to(admin::jobs)),
        SiteRoute::post("/admin/jobs/{name}", || web::post().to(admin::set_job)),
        SiteRoute::post("/admin/jobs/{name}/{action}", || web::post().to(admin::control_job)),
    ]
}

/// Prometheus scrape endpoint (unauthenticated and unlimited, like the health checks;
/// expose it only where scrapers can reach it).
async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let stats = state.engine.store.send(citecast_actors::actors::GetStats).await??;
    let docs = state.engine.index.send(citecast_actors::actors::IndexDocCount).await?;
    let logins = state.logins.clone();
    let pairs = actix_web::rt::task::spawn_blocking(move || logins.onboarding())
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)?;
    let onboarding = crate::accounts::signin::onboarding(&pairs);
    let subs = crate::newsletter::store::Subscribers::open(&state.engine.db).map_err(ApiError::from)?;
    let (delivery, readers) = actix_web::rt::task::spawn_blocking(move || {
        let mut total = crate::newsletter::subscribers::DeliveryStats::default();
        for (_, s) in subs.stats()? {
            total.add(&s);
        }
        Ok::<_, crate::newsletter::NewsletterError>((
            total,
            subs.counts()?.get("confirmed").copied().unwrap_or(0),
        ))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::from)?;
    let body = state.metrics.render(&[
        ("citecast_newsletter_subscribers", "Confirmed newsletter subscribers.", readers as f64),
        ("citecast_newsletter_queued", "Newsletter copies waiting to be sent.", delivery.queued as f64),
        ("citecast_newsletter_deferred", "Newsletter copies waiting for a retry.", delivery.deferred as f64),
        ("citecast_newsletter_sent", "Newsletter copies sent (all issues).", delivery.sent as f64),
        (
            "citecast_newsletter_bounced",
            "Newsletter copies refused for good (hard bounces).",
            delivery.bounced as f64,
        ),
        (
            "citecast_newsletter_failed",
            "Newsletter copies given up after every retry.",
            delivery.failed as f64,
        ),
        ("citecast_signups", "Customers who signed up on the web and confirmed.", onboarding.signups as f64),
        (
            "citecast_signups_with_first_call",
            "Of those, customers who made a successful API call.",
            onboarding.with_first_call as f64,
        ),
        (
            "citecast_signup_to_first_call_seconds",
            "Median seconds from sign-up to the first successful API call (NaN: none yet).",
            onboarding.median_secs_to_first_call.unwrap_or(f64::NAN),
        ),
        ("citecast_store_size_bytes", "sled store size on disk.", stats.size_on_disk_bytes as f64),
        ("citecast_store_papers", "Papers stored.", stats.papers as f64),
        ("citecast_store_citations", "Citations stored.", stats.citations as f64),
        ("citecast_index_documents", "Documents in the search index.", docs as f64),
        ("citecast_ready", "1 once data and index are loaded.", state.is_ready() as u8 as f64),
        (
            "citecast_in_flight_requests",
            "Requests being handled under /v1.",
            state.in_flight.load(Ordering::Relaxed) as f64,
        ),
    ]);
    let mut body = body;
    if let Some(jobs) = &state.jobs {
        if let Ok(Ok(r)) = jobs.send(crate::ops::jobs::GetJobs { history: 0 }).await {
            crate::ops::metrics::render_jobs(&mut body, &r);
        }
    }
    if let Some(monitor) = state.monitor.get() {
        if let Ok(Ok(v)) = monitor.send(crate::ops::monitor::GetView { chart_secs: 0 }).await {
            crate::ops::metrics::render_monitor(&mut body, &v);
        }
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.is_ready() {
        // Papers and search serve from here; forecasts once the models are warm.
        let forecasts = if state.models_warm.load(Ordering::Acquire) { "ready" } else { "warming_up" };
        HttpResponse::Ok().json(json!({ "status": "ready", "forecasts": forecasts }))
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(json!({ "status": "loading" }))
    }
}
