//! Contest pages: `/contests` (every contest), `/contests/{id}` (rules, pool, the
//! reader's picks while open, the leaderboard once scored), the picks form, and
//! `/contests/people/{entrant}` (one person's or the model's history). Deadlines are
//! shown in the reader's zone (`?tz=`). The model's picks stay hidden until the lock.

use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::time::Duration;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use bytes::Bytes;
use citecast_actors::dates;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::store::{call, Contests};
use super::{Contest, ContestError, Entry, Phase, Pick, MODEL};
use crate::accounts::page::{message, signed_in_or_redirect, unavailable};
use crate::community::zone::reader_zone;
use crate::web::error::ApiError;
use crate::web::page::{private_html, Nav};
use crate::web::session as websession;
use crate::web::AppState;

/// Entry changes per person: 5 at once, then one every 12 seconds.
fn limiter() -> &'static RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock> {
    static L: OnceLock<RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>> = OnceLock::new();
    L.get_or_init(|| {
        RateLimiter::keyed(
            Quota::with_period(Duration::from_secs(12))
                .expect("positive")
                .allow_burst(NonZeroU32::new(5).expect("positive")),
        )
    })
}

fn percent(p: f64) -> String {
    format!("{:.0} %", p * 100.0)
}

struct ListRow {
    href: String,
    title: String,
    phase: &'static str,
    deadline: String,
    target: String,
    replay: Option<String>,
}

#[derive(Template)]
#[template(path = "site/contest_list.html")]
struct ListPage {
    nav: Nav,
    zone: String,
    rows: Vec<ListRow>,
}

fn not_found(session: &Session, state: &AppState, what: &str) -> Result<HttpResponse, ApiError> {
    message(
        StatusCode::NOT_FOUND,
        Nav::of(session, &state.site),
        "Not found",
        vec![format!("{what} was not found.")],
        ("/contests", "All contests"),
    )
}

/// `GET /contests`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let zone = reader_zone(req.query_string(), &session);
    let db = state.engine.db.clone();
    let all = match call(move || Contests::open(&db)?.all()).await {
        Ok(a) => a,
        Err(e) => return unavailable(Nav::of(&session, &state.site), "list the contests", e),
    };
    let now = dates::now_secs();
    let rows = all
        .into_iter()
        .map(|c| ListRow {
            href: c.path(),
            phase: c.phase(now).as_str(),
            deadline: zone.show(c.deadline),
            target: c.target.describe(c.pick_limit),
            replay: c.as_of.clone(),
            title: c.title,
        })
        .collect();
    private_html(
        StatusCode::OK,
        ListPage { nav: Nav::of(&session, &state.site), zone: zone.name, rows }.render(),
    )
}

struct PoolRow {
    index: usize,
    href: String,
    title: String,
    submitted: String,
    checked: bool,
    probability: String,
    relevant: bool,
    model_pick: bool,
}

struct BoardRow {
    rank: usize,
    name: String,
    href: String,
    hits: usize,
    precision: String,
    brier: String,
    model: bool,
}

#[derive(Template)]
#[template(path = "site/contest_detail.html")]
struct DetailPage {
    nav: Nav,
    id: String,
    title: String,
    rules_html: String,
    target: String,
    pool_label: String,
    pick_limit: usize,
    phase: &'static str,
    deadline: String,
    zone: String,
    replay: Option<String>,
    signed_in: bool,
    can_enter: bool,
    entered: bool,
    entries: usize,
    pool: Vec<PoolRow>,
    board: Vec<BoardRow>,
    model_version: Option<String>,
    error: Option<String>,
    notice: Option<String>,
}

/// What the page says after a form: its status, an error or a notice, and the picks
/// just sent (shown again when refused).
struct Said {
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
    form: Option<Vec<Pick>>,
}

impl Said {
    fn ok() -> Said {
        Said { status: StatusCode::OK, error: None, notice: None, form: None }
    }

    fn error(status: StatusCode, error: String, form: Option<Vec<Pick>>) -> Said {
        Said { status, error: Some(error), notice: None, form }
    }
}

/// The contest page for this reader.
async fn render(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
    id: String,
    said: Said,
) -> Result<HttpResponse, ApiError> {
    let Said { status, error, notice, form } = said;
    let me = websession::signed_in(session).map(|(id, _)| id);
    let (db, key, who) = (state.engine.db.clone(), id.clone(), me.clone());
    let loaded = call(move || {
        let store = Contests::open(&db)?;
        let Some(c) = store.get(&key)? else { return Ok(None) };
        let entries = store.entries(&key)?;
        let mine = match &who {
            Some(w) => store.entry(&key, w)?,
            None => None,
        };
        Ok(Some((c, entries, mine)))
    })
    .await;
    let (c, entries, mine) = match loaded {
        Ok(Some(x)) => x,
        Ok(None) => return not_found(session, state, "That contest"),
        Err(e) => return unavailable(Nav::of(session, &state.site), "load the contest", e),
    };
    let now = dates::now_secs();
    let phase = c.phase(now);
    let zone = reader_zone(req.query_string(), session);
    let shown: Vec<Pick> = form.or_else(|| mine.as_ref().map(|e| e.picks.clone())).unwrap_or_default();
    let model: Option<&Entry> = entries.iter().find(|e| e.entrant == MODEL);
    let reveal = phase != Phase::Open;
    let relevant: Vec<String> = c.results.as_ref().map(|r| r.relevant.clone()).unwrap_or_default();
    let pool = c
        .pool
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let pick = shown.iter().find(|s| s.paper_id == p.id);
            PoolRow {
                index,
                href: crate::papers::page::href(&p.id),
                title: p.title.clone(),
                submitted: p.submitted.clone(),
                checked: pick.is_some(),
                probability: pick.and_then(|s| s.probability).map(|q| format!("{q}")).unwrap_or_default(),
                relevant: relevant.contains(&p.id),
                model_pick: reveal && model.is_some_and(|m| m.picks.iter().any(|s| s.paper_id == p.id)),
            }
        })
        .collect();
    let mut board = Vec::new();
    if let Some(r) = &c.results {
        let names = crate::community::page::names(
            state,
            r.scores.iter().filter(|s| s.entrant != MODEL).map(|s| s.entrant.clone()).collect(),
        )
        .await;
        for s in &r.scores {
            let is_model = s.entrant == MODEL;
            board.push(BoardRow {
                rank: s.rank,
                name: if is_model {
                    "The citecast model".into()
                } else {
                    names.get(&s.entrant).cloned().unwrap_or_default()
                },
                href: format!("/contests/people/{}", s.entrant),
                hits: s.hits,
                precision: percent(s.precision),
                brier: s.brier.map(|b| format!("{b:.3}")).unwrap_or_else(|| "—".into()),
                model: is_model,
            });
        }
    }
    let page = DetailPage {
        nav: Nav::of(session, &state.site),
        id: c.id.clone(),
        title: c.title.clone(),
        rules_html: crate::community::render_markdown(&c.rules),
        target: c.target.describe(c.pick_limit),
        pool_label: c.pool_label.clone(),
        pick_limit: c.pick_limit,
        phase: phase.as_str(),
        deadline: zone.show(c.deadline),
        zone: zone.name.clone(),
        replay: c.as_of.clone(),
        signed_in: me.is_some(),
        can_enter: me.is_some() && phase == Phase::Open,
        entered: mine.is_some(),
        entries: entries.len(),
        pool,
        board,
        model_version: if reveal { model.and_then(|m| m.model_version.clone()) } else { None },
        error,
        notice,
    };
    private_html(status, page.render())
}

/// `GET /contests/{id}`.
pub async fn detail(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    render(&req, &state, &session, path.into_inner(), Said::ok()).await
}

/// The picks in a posted form: `pick` = pool index (repeated), `p<index>` = probability
/// (0 to 1, or a percentage).
fn parse_picks(c: &Contest, pairs: &[(String, String)]) -> Result<Vec<Pick>, ContestError> {
    let mut picks = Vec::new();
    for (k, v) in pairs {
        if k != "pick" {
            continue;
        }
        let i: usize = v
            .trim()
            .parse()
            .map_err(|_| ContestError::Invalid("The form names a paper that is not in the pool.".into()))?;
        let paper = c
            .pool
            .get(i)
            .ok_or_else(|| ContestError::Invalid("The form names a paper that is not in the pool.".into()))?;
        let field = format!("p{i}");
        let raw = pairs.iter().find(|(k, _)| *k == field).map(|(_, v)| v.trim()).unwrap_or("");
        let probability = if raw.is_empty() {
            None
        } else {
            let (num, pct) = match raw.strip_suffix('%') {
                Some(n) => (n.trim(), true),
                None => (raw, false),
            };
            let q: f64 = num.parse().map_err(|_| {
                ContestError::Invalid(format!("The probability for \"{}\" is not a number.", paper.title))
            })?;
            Some(if pct || q > 1.0 { q / 100.0 } else { q })
        };
        picks.push(Pick { paper_id: paper.id.clone(), probability });
    }
    super::check_picks(c, &picks)?;
    Ok(picks)
}

/// `POST /contests/{id}/entry`: the reader's picks, while the contest is open.
pub async fn enter(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let login = signed_in_or_redirect!(state, session);
    let id = path.into_inner();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let csrf = pairs.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or("");
    if let Err(refused) = websession::check_form(&req, &session, &state.site, csrf) {
        return render(
            &req,
            &state,
            &session,
            id,
            Said::error(StatusCode::FORBIDDEN, refused.message().into(), None),
        )
        .await;
    }
    let (db, key) = (state.engine.db.clone(), id.clone());
    let c = match call(move || Contests::open(&db)?.get(&key)).await {
        Ok(Some(c)) => c,
        Ok(None) => return not_found(&session, &state, "That contest"),
        Err(e) => return unavailable(Nav::of(&session, &state.site), "load the contest", e),
    };
    let picks = match parse_picks(&c, &pairs) {
        Ok(p) => p,
        Err(e) => {
            // Show what they sent, as far as it named pool papers.
            return render(
                &req,
                &state,
                &session,
                id,
                Said::error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string(), None),
            )
            .await;
        }
    };
    if let Err(not_until) = limiter().check_key(&login.customer_id) {
        let wait = not_until.wait_time_from(DefaultClock::default().now()).as_secs().max(1);
        let msg =
            format!("You changed your picks very often just now; wait {wait} seconds and send them again.");
        let mut resp =
            render(&req, &state, &session, id, Said::error(StatusCode::TOO_MANY_REQUESTS, msg, Some(picks)))
                .await?;
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&wait.to_string()) {
            resp.headers_mut().insert(actix_web::http::header::RETRY_AFTER, v);
        }
        return Ok(resp);
    }
    let now = dates::now_secs();
    let entry = Entry {
        contest_id: c.id.clone(),
        entrant: login.customer_id.clone(),
        picks: picks.clone(),
        submitted: now,
        model_version: None,
    };
    let (db, e) = (state.engine.db.clone(), entry.clone());
    match call(move || Contests::open(&db)?.save_entry(&e, now)).await {
        Ok(before) => {
            super::service::audit(
                &state.engine,
                &login.customer_id,
                "contest.entry",
                &c.id,
                before.as_ref(),
                &entry,
            )
            .await;
            let notice = format!(
                "Your {} picks are saved. You can change them until the deadline.",
                entry.picks.len()
            );
            render(&req, &state, &session, id, Said { notice: Some(notice), ..Said::ok() }).await
        }
        Err(ContestError::Refused(m)) => {
            render(&req, &state, &session, id, Said::error(StatusCode::CONFLICT, m, Some(picks))).await
        }
        Err(e) => unavailable(Nav::of(&session, &state.site), "save your picks", e),
    }
}

struct HistoryRow {
    href: String,
    title: String,
    phase: &'static str,
    picks: usize,
    rank: String,
    precision: String,
    brier: String,
}

#[derive(Template)]
#[template(path = "site/contest_history.html")]
struct HistoryPage {
    nav: Nav,
    name: String,
    rows: Vec<HistoryRow>,
}

/// `GET /contests/people/{entrant}`: a person's (or the model's) contests and results.
/// Picks of contests still open are not shown, only that there is an entry.
pub async fn history(
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let entrant = path.into_inner();
    let (db, who) = (state.engine.db.clone(), entrant.clone());
    let loaded = call(move || {
        let store = Contests::open(&db)?;
        let mut out = Vec::new();
        for e in store.entries_of(&who)? {
            if let Some(c) = store.get(&e.contest_id)? {
                out.push((c, e));
            }
        }
        Ok(out)
    })
    .await;
    let list = match loaded {
        Ok(l) => l,
        Err(e) => return unavailable(Nav::of(&session, &state.site), "load the history", e),
    };
    let name = if entrant == MODEL {
        "The citecast model".to_string()
    } else {
        let names = crate::community::page::names(&state, vec![entrant.clone()]).await;
        match names.get(&entrant) {
            Some(n) if list.is_empty() && n == "A former member" => {
                return not_found(&session, &state, "That person's history")
            }
            Some(n) => n.clone(),
            None => return not_found(&session, &state, "That person's history"),
        }
    };
    let now = dates::now_secs();
    let mut rows: Vec<HistoryRow> = list
        .into_iter()
        .map(|(c, e)| {
            let score =
                c.results.as_ref().and_then(|r| r.scores.iter().find(|s| s.entrant == e.entrant).cloned());
            HistoryRow {
                href: c.path(),
                title: c.title.clone(),
                phase: c.phase(now).as_str(),
                picks: e.picks.len(),
                rank: score
                    .as_ref()
                    .map(|s| format!("{} of {}", s.rank, c.results.as_ref().map_or(0, |r| r.scores.len())))
                    .unwrap_or_else(|| "—".into()),
                precision: score.as_ref().map(|s| percent(s.precision)).unwrap_or_else(|| "—".into()),
                brier: score.and_then(|s| s.brier).map(|b| format!("{b:.3}")).unwrap_or_else(|| "—".into()),
            }
        })
        .collect();
    rows.sort_by(|a, b| b.href.cmp(&a.href));
    private_html(StatusCode::OK, HistoryPage { nav: Nav::of(&session, &state.site), name, rows }.render())
}
