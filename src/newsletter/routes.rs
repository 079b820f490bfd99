//! The newsletter's public pages: `/newsletter` (the pitch, the subscribe form and the
//! latest issues), `/newsletter/archive?page=N`, `/newsletter/{n}` (permanent; `?format=json`
//! for it and for `/newsletter`), `/newsletter/feed.atom`, and `/newsletter/track-record`:
//! what became of every pick of a past issue. Pages answer errors with a readable page.

use actix_session::Session;
use actix_web::http::header::{HeaderValue, CONTENT_TYPE, VARY};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use atom_syndication::{Content, Entry, Feed, FixedDateTime, Link, Person, Text};
use citecast_actors::actors::{ForecastPapers, GetCitations};
use citecast_actors::dates;
use citecast_actors::forecast::service::Route;
use citecast_actors::forecast::task::Mode;
use citecast_actors::store::Direction;

use super::store::call;
use super::track::{self, Fate, Tally};
use super::{Issue, Item};
use crate::web::error::{ask, ApiError};
use crate::web::page::{self, Nav};
use crate::web::{get_or_head, AppState, SiteRoute};

/// Issues on one page of the archive.
const ARCHIVE_PAGE: usize = 20;
/// Issues listed on `/newsletter`.
const LATEST: usize = 5;
/// Entries in the feed: the latest issues (older ones are in the archive).
const FEED_ENTRIES: usize = 50;
/// Seconds a shared cache may keep a public page or the feed.
const MAX_AGE: u32 = 300;

/// One pick of an issue and what became of it.
struct Pick {
    item: Item,
    fate: Fate,
    /// Citations dated after the issue's week, or `None` when the store could not tell.
    citations_since: Option<u64>,
}

impl Pick {
    fn since_in_words(&self) -> String {
        match self.citations_since {
            Some(1) => "1 citation since the issue".into(),
            Some(n) => format!("{n} citations since the issue"),
            None => "citations since the issue unknown just now".into(),
        }
    }
}

/// An issue's picks with their fates, the tally of its picks marked high, and the tally
/// of every issue up to it.
struct Record {
    number: u32,
    week_from: String,
    week_to: String,
    picks: Vec<Pick>,
    tally: Tally,
    running: Tally,
}

#[derive(Template)]
#[template(path = "newsletter_index.html")]
struct IndexPage {
    nav: Nav,
    topics: Vec<(String, String)>,
    latest: Vec<Issue>,
    total: usize,
}

#[derive(Template)]
#[template(path = "newsletter_archive.html")]
struct ArchivePage {
    nav: Nav,
    issues: Vec<Issue>,
    page: usize,
    pages: usize,
    total: usize,
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "newsletter_issue.html")]
struct IssuePage {
    nav: Nav,
    issue: Issue,
    /// What "high" means for the model that judged the issue: its threshold and how often
    /// papers above it did reach the top 10 % in the test years.
    model_note: String,
    record: Record,
}

#[derive(Template)]
#[template(path = "newsletter_track_record.html")]
struct TrackRecordPage {
    nav: Nav,
    /// Newest first; each with the running tally through it.
    records: Vec<Record>,
    overall: Tally,
}

/// A readable error page in the site's layout.
#[derive(Template)]
#[template(path = "site/message.html")]
struct Problem<'a> {
    nav: Nav,
    title: &'a str,
    paragraphs: Vec<String>,
    notice: Option<String>,
    link_href: &'a str,
    link_label: &'a str,
}

/// The header of a page anyone may cache. A reader who is not signed in gets no session
/// (no cookie, no token), so the page is the same for all of them; a signed-in reader's
/// header carries their log-out form's token, so their copy is private ([`respond`]).
fn public_nav(session: &Session, state: &AppState) -> Nav {
    if crate::web::session::signed_in(session).is_some() {
        Nav::of(session, &state.site)
    } else {
        Nav { signed_in: false, csrf: String::new() }
    }
}

/// A public page: cacheable for a while, unless its header is a signed-in reader's.
fn respond(
    signed_in: bool,
    status: StatusCode,
    body: Result<String, askama::Error>,
) -> Result<HttpResponse, ApiError> {
    let mut resp = if signed_in {
        page::private_html(status, body)?
    } else {
        let max_age = if status.is_success() { MAX_AGE } else { 0 };
        page::html(status, body, max_age)?
    };
    resp.headers_mut().insert(VARY, HeaderValue::from_static("Cookie"));
    Ok(resp)
}

fn problem(nav: Nav, status: StatusCode, title: &str, message: String) -> Result<HttpResponse, ApiError> {
    let signed_in = nav.signed_in;
    let page = Problem {
        nav,
        title,
        paragraphs: vec![message],
        notice: None,
        link_href: "/newsletter/archive",
        link_label: "Every issue",
    };
    respond(signed_in, status, page.render())
}

/// The model's threshold and precision in words, or why they cannot be given.
async fn model_note(state: &AppState, version: &str) -> String {
    let models = ask(&state.engine.model, citecast_actors::actors::ListModels, "model engine").await;
    match models.ok().and_then(|m| m.into_iter().find(|m| m.version == version)) {
        Some(m) if m.test.precision.is_finite() => format!(
            "A pick is marked high when its probability is at least {:.0} %, the model's threshold. \
             On the papers of its test years, {:.0} % of the papers it marked high did reach the top 10 % \
             (and it found {:.0} % of those that did): a high mark is a good bet, not a certainty.",
            m.threshold * 100.0,
            m.test.precision * 100.0,
            m.test.recall * 100.0
        ),
        _ => format!(
            "Model {version} is no longer loaded on this server, so how often its high marks were right \
             cannot be shown here."
        ),
    }
}

fn wants_json(req: &HttpRequest) -> bool {
    req.query_string().split('&').any(|kv| kv == "format=json")
}

/// The fates of an issue's picks, in its order: one forecast call for the whole issue
/// (the outcome is a fact of the data, whichever model answers).
async fn fates(state: &AppState, issue: &Issue) -> Vec<Fate> {
    let unchecked = || vec![Fate::Unchecked; issue.items.len()];
    if issue.items.is_empty() || state.require_warm_models().is_err() {
        return unchecked();
    }
    let ids = issue.items.iter().map(|i| i.paper_id.clone()).collect();
    let msg = ForecastPapers { ids, mode: Mode::AtPublication, route: Route::default() };
    let results = match ask(&state.engine.model, msg, "model engine").await {
        Ok(Ok(results)) => results,
        Ok(Err(e)) => {
            tracing::warn!(issue = issue.number, error = %e, "track record: outcomes not read");
            return unchecked();
        }
        Err(e) => {
            tracing::warn!(issue = issue.number, error = %e, "track record: outcomes not read");
            return unchecked();
        }
    };
    let mut results = results.into_iter();
    issue
        .items
        .iter()
        .map(|item| match results.next() {
            Some(Ok(f)) => Fate::from_outcome(f.outcome, &item.submitted),
            Some(Err(e)) => {
                tracing::debug!(paper = item.paper_id, error = %e, "track record: no outcome");
                Fate::Unchecked
            }
            None => Fate::Unchecked,
        })
        .collect()
}

/// Citations citing papers: read in pages of this many.
const CITATION_PAGE: usize = 50;

/// Citations a paper received after the issue's week (`after`, `YYYY-MM-DD`): its total
/// less those dated up to then. Citing papers are stored in date order, so only the first
/// few are read. `None` when the store cannot tell.
async fn citations_since(state: &AppState, id: &str, after: &str) -> Option<u64> {
    let after = dates::parse(after)?;
    let mut cursor = None;
    let mut before = 0u64;
    loop {
        let msg = GetCitations { id: id.to_string(), direction: Direction::In, cursor, limit: CITATION_PAGE };
        let page = match ask(&state.engine.store, msg, "store").await {
            Ok(Ok(Some((_, page)))) => page,
            Ok(Ok(None)) => return None,
            Ok(Err(e)) => {
                tracing::warn!(paper = id, error = %e, "track record: citations not read");
                return None;
            }
            Err(e) => {
                tracing::warn!(paper = id, error = %e, "track record: citations not read");
                return None;
            }
        };
        let early =
            page.items.iter().take_while(|c| dates::parse(&c.date).is_some_and(|d| d <= after)).count();
        before += early as u64;
        match page.next_cursor {
            Some(next) if early == page.items.len() => cursor = Some(next),
            _ => return Some(page.total.saturating_sub(before)),
        }
    }
}

/// What became of an issue's picks.
async fn record(state: &AppState, issue: &Issue) -> Record {
    let since = issue.items.iter().map(|i| citations_since(state, &i.paper_id, &issue.week_to));
    let (fates, since) = futures::future::join(fates(state, issue), futures::future::join_all(since)).await;
    let tally = Tally::of(issue.items.iter().zip(&fates).map(|(i, f)| (i.label.as_str(), f)));
    let picks = issue
        .items
        .iter()
        .zip(fates.into_iter().zip(since))
        .map(|(item, (fate, citations_since))| Pick { item: item.clone(), fate, citations_since })
        .collect();
    Record {
        number: issue.number,
        week_from: issue.week_from.clone(),
        week_to: issue.week_to.clone(),
        picks,
        tally,
        running: tally,
    }
}

/// `GET /newsletter`: the pitch, the subscribe form and the latest issues. The form
/// carries the session's token, so the page is never cached.
pub async fn index(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let issues = call(&state.issues, |s| s.list()).await?;
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(serde_json::json!({ "issues": issues })));
    }
    let total = issues.len();
    let page = IndexPage {
        nav: Nav::of(&session, &state.site),
        topics: super::topics(),
        latest: issues.into_iter().take(LATEST).collect(),
        total,
    };
    page::private_html(StatusCode::OK, page.render())
}

/// The archive page asked for: `page` in the query, 1 when absent.
fn page_number(req: &HttpRequest) -> Result<usize, String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    match pairs.iter().find(|(k, _)| k == "page") {
        None => Ok(1),
        Some((_, v)) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!(
                "'{}' is not a page number: the archive's pages are numbered 1, 2, 3, ...",
                v.chars().take(40).collect::<String>()
            )),
        },
    }
}

/// `GET /newsletter/archive?page=N`: every issue, newest first, 20 a page.
pub async fn archive(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let nav = public_nav(&session, &state);
    let page = match page_number(&req) {
        Ok(n) => n,
        Err(message) => return problem(nav, StatusCode::BAD_REQUEST, "Not a page number", message),
    };
    let issues = call(&state.issues, |s| s.list()).await?;
    let total = issues.len();
    let pages = total.div_ceil(ARCHIVE_PAGE).max(1);
    if page > pages {
        let message = format!(
            "There is no page {page}: the archive has {pages} page{} of {total} issue{}.",
            if pages == 1 { "" } else { "s" },
            if total == 1 { "" } else { "s" }
        );
        return problem(nav, StatusCode::NOT_FOUND, "No such page", message);
    }
    let link = |n: usize| {
        if n == 1 {
            "/newsletter/archive".to_string()
        } else {
            format!("/newsletter/archive?page={n}")
        }
    };
    let body = ArchivePage {
        issues: issues.into_iter().skip((page - 1) * ARCHIVE_PAGE).take(ARCHIVE_PAGE).collect(),
        page,
        pages,
        total,
        prev: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
        nav,
    };
    respond(body.nav.signed_in, StatusCode::OK, body.render())
}

/// `GET /newsletter/{n}`: one issue, permanently at this address, with what became of
/// its picks (`?format=json`: the issue as stored).
pub async fn issue(
    req: HttpRequest,
    number: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let raw = number.into_inner();
    let Ok(n) = raw.parse::<u32>() else {
        if wants_json(&req) {
            return Err(ApiError::param("number", format!("'{raw}' is not an issue number")));
        }
        let shown: String = raw.chars().take(40).collect();
        let message = format!("'{shown}' is not an issue number: issues are numbered 1, 2, 3, ...");
        return problem(public_nav(&session, &state), StatusCode::NOT_FOUND, "Issue not found", message);
    };
    match call(&state.issues, move |s| s.get(n)).await? {
        Some(issue) if wants_json(&req) => Ok(HttpResponse::Ok().json(issue)),
        Some(issue) => {
            let (model_note, record) =
                futures::future::join(model_note(&state, &issue.model_version), record(&state, &issue)).await;
            let page = IssuePage { nav: public_nav(&session, &state), issue, model_note, record };
            respond(page.nav.signed_in, StatusCode::OK, page.render())
        }
        None if wants_json(&req) => Err(ApiError::NotFound { what: "issue", id: raw }),
        None => problem(
            public_nav(&session, &state),
            StatusCode::NOT_FOUND,
            "Issue not found",
            format!("There is no issue {n} yet."),
        ),
    }
}

/// `GET /newsletter/track-record`: every past issue's picks and what became of them, with
/// each issue's hit rate and the running rate over the issues up to it.
pub async fn track_record(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, ApiError> {
    let mut issues = call(&state.issues, |s| s.list()).await?;
    issues.reverse();
    // Oldest first, one forecast call per issue.
    let mut records = futures::future::join_all(issues.iter().map(|i| record(&state, i))).await;
    let tallies: Vec<Tally> = records.iter().map(|r| r.tally).collect();
    for (r, running) in records.iter_mut().zip(track::running(&tallies)) {
        r.running = running;
    }
    let overall = records.last().map(|r| r.running).unwrap_or_default();
    records.reverse();
    let page = TrackRecordPage { nav: public_nav(&session, &state), records, overall };
    respond(page.nav.signed_in, StatusCode::OK, page.render())
}

/// Escapes text for an HTML fragment (the feed's content).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn atom_time(secs: i64) -> FixedDateTime {
    // `dates::rfc3339` always writes a valid RFC 3339 time; the epoch is never reached.
    FixedDateTime::parse_from_rfc3339(&dates::rfc3339(secs)).unwrap_or_default()
}

/// One issue as a feed entry: its permanent address as id and link, its picks as content.
fn entry(base: &str, issue: &Issue) -> Entry {
    let url = format!("{base}/newsletter/{}", issue.number);
    let mut html = format!(
        "<p>The {} papers submitted from {} to {} (of {}) most likely to end in the top 10 % of their year by citations, as model {} judged them at publication.</p><ol>",
        issue.items.len(),
        escape(&issue.week_from),
        escape(&issue.week_to),
        issue.papers_considered,
        escape(&issue.model_version)
    );
    for it in &issue.items {
        let mark = if it.label == "high" { "marked high" } else { "below the threshold" };
        html.push_str(&format!(
            "<li><a href=\"{}{}\">{}</a>, {}: {:.0} % ({mark})</li>",
            base,
            escape(&it.page_url()),
            escape(&it.plain_title()),
            escape(&it.authors.join(", ")),
            it.probability * 100.0
        ));
    }
    html.push_str("</ol>");
    let summary = match issue.items.first() {
        Some(top) => format!(
            "{} picks from {} papers; the likeliest: {} ({:.0} %).",
            issue.items.len(),
            issue.papers_considered,
            top.plain_title(),
            top.probability * 100.0
        ),
        None => format!("No pick among {} papers.", issue.papers_considered),
    };
    Entry {
        title: Text::plain(format!(
            "citecast weekly, issue {}: papers of {} to {}",
            issue.number, issue.week_from, issue.week_to
        )),
        id: url.clone(),
        updated: atom_time(issue.built_at),
        published: Some(atom_time(issue.built_at)),
        links: vec![Link {
            href: url,
            rel: "alternate".into(),
            mime_type: Some("text/html".into()),
            ..Link::default()
        }],
        summary: Some(Text::plain(summary)),
        content: Some(Content { value: Some(html), content_type: Some("html".into()), ..Content::default() }),
        ..Entry::default()
    }
}

/// `GET /newsletter/feed.atom`: the latest issues as an Atom 1.0 feed, with absolute links.
pub async fn feed(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let issues = call(&state.issues, |s| s.list()).await?;
    let base = state.site.base_url.trim_end_matches('/');
    let updated = issues.first().map_or_else(dates::now_secs, |i| i.built_at);
    let feed = Feed {
        title: Text::plain("citecast weekly"),
        subtitle: Some(Text::plain(
            "Every week, the new papers most likely to become the most cited of their year.",
        )),
        id: format!("{base}/newsletter/feed.atom"),
        updated: atom_time(updated),
        authors: vec![Person { name: "citecast".into(), uri: Some(format!("{base}/")), ..Person::default() }],
        links: vec![
            Link {
                href: format!("{base}/newsletter/feed.atom"),
                rel: "self".into(),
                mime_type: Some("application/atom+xml".into()),
                ..Link::default()
            },
            Link {
                href: format!("{base}/newsletter"),
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                ..Link::default()
            },
        ],
        entries: issues.iter().take(FEED_ENTRIES).map(|i| entry(base, i)).collect(),
        lang: Some("en".into()),
        ..Feed::default()
    };
    let body = feed.write_to(Vec::new()).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/atom+xml; charset=utf-8"))
        .insert_header(("Cache-Control", format!("public, max-age={MAX_AGE}")))
        .body(body))
}

/// The newsletter's pages. `/newsletter/{number}` comes last: it would otherwise answer
/// for every fixed path under `/newsletter/`.
pub fn site_routes() -> Vec<SiteRoute> {
    [
        vec![
            SiteRoute::get("/newsletter", || get_or_head().to(index)),
            SiteRoute::get("/newsletter/archive", || get_or_head().to(archive)),
            SiteRoute::get("/newsletter/feed.atom", || get_or_head().to(feed)),
            SiteRoute::get("/newsletter/track-record", || get_or_head().to(track_record)),
        ],
        super::page::routes(),
        vec![SiteRoute::get("/newsletter/{number}", || get_or_head().to(issue))],
    ]
    .into_iter()
    .flatten()
    .collect()
}
