//! Contests and the engine: resolving a pool, the model's picks, the data's outcomes,
//! locking and scoring, and the announcements each step makes. The job and the operator
//! endpoints both call [`tick`], [`lock`] and [`score`], so they behave alike.

use std::sync::Arc;

use citecast_actors::actors::{ForecastPapers, GetPaper, GetPaperRecord, RecentPaperIds, Search};
use citecast_actors::dates;
use citecast_actors::forecast::service::Route;
use citecast_actors::forecast::task::Mode;
use citecast_actors::index::SearchRequest;
use citecast_actors::Engine;
use serde::Deserialize;

use super::store::{call, Contests};
use super::{Contest, ContestError, Entry, PaperOutcome, Phase, Pick, PoolPaper, Target, MODEL};
use crate::accounts::AccountStore;
use crate::webhooks::Announcement;

/// Largest pool a contest may have.
pub const MAX_POOL: usize = 500;
/// Most picks a contest may allow.
pub const MAX_PICKS: usize = 50;

fn engine_error(e: impl std::fmt::Display) -> ContestError {
    ContestError::Engine(format!("the engine did not answer: {e}"))
}

/// Which papers a contest is about: explicit ids, a search, or a date range (a month's
/// submissions: `from` 2001-03-01, `to` 2001-03-31).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

/// What an operator sends to create a contest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContest {
    pub title: String,
    #[serde(default)]
    pub rules: String,
    /// `top_10_percent` or `most_citations_6m`.
    pub target: String,
    pub pool: PoolSpec,
    pub pick_limit: usize,
    /// Unix seconds or RFC 3339.
    pub deadline: serde_json::Value,
    /// A replay's past day, `YYYY-MM-DD`.
    #[serde(default)]
    pub as_of: Option<String>,
}

fn parse_instant(v: &serde_json::Value) -> Result<i64, ContestError> {
    let bad = || ContestError::Invalid("'deadline' must be unix seconds or an RFC 3339 time".into());
    match v {
        serde_json::Value::Number(n) => n.as_i64().ok_or_else(bad),
        serde_json::Value::String(s) => {
            s.parse::<jiff::Timestamp>().map(|t| t.as_second()).map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

fn parse_day(field: &str, s: &Option<String>) -> Result<Option<dates::Day>, ContestError> {
    s.as_deref()
        .map(|d| {
            dates::parse(d)
                .ok_or_else(|| ContestError::Invalid(format!("'{field}' must be a date, YYYY-MM-DD")))
        })
        .transpose()
}

/// Resolves the pool to papers (at most [`MAX_POOL`]), papers submitted after `until`
/// (a replay's day) left out.
async fn resolve_pool(
    engine: &Engine,
    spec: &PoolSpec,
    until: Option<dates::Day>,
) -> Result<(Vec<PoolPaper>, String), ContestError> {
    let from = parse_day("pool.from", &spec.from)?;
    let to = match (parse_day("pool.to", &spec.to)?, until) {
        (Some(t), Some(u)) => Some(t.min(u)),
        (t, u) => t.or(u),
    };
    let ids: Vec<String>;
    let label;
    if !spec.ids.is_empty() {
        ids = spec.ids.clone();
        label = format!("{} chosen papers", ids.len());
    } else if let Some(q) = spec.query.as_deref().filter(|q| !q.trim().is_empty()) {
        let req = SearchRequest {
            query: q.to_string(),
            from,
            to,
            author_key: None,
            collection: None,
            offset: 0,
            limit: MAX_POOL + 1,
        };
        let found = engine.index.send(Search(req)).await.map_err(engine_error)?.map_err(engine_error)?;
        ids = found.hits.into_iter().map(|h| h.id).collect();
        label = format!("papers matching \"{q}\"");
    } else {
        let (Some(from), Some(to)) = (from, to) else {
            return Err(ContestError::Invalid(
                "give the pool as 'ids', a 'query', or a date range 'from' and 'to'".into(),
            ));
        };
        let all = engine.store.send(RecentPaperIds { limit: usize::MAX }).await.map_err(engine_error)?;
        let mut all: Vec<(String, dates::Day)> =
            all.map_err(engine_error)?.into_iter().filter(|(_, d)| *d >= from && *d <= to).collect();
        all.reverse();
        ids = all.into_iter().map(|(id, _)| id).collect();
        label = format!("papers submitted {} to {}", dates::format(from), dates::format(to));
    }
    if ids.len() > MAX_POOL {
        return Err(ContestError::Invalid(format!("the pool holds over {MAX_POOL} papers; narrow it")));
    }
    let mut pool = Vec::with_capacity(ids.len());
    for id in ids {
        let p = engine.store.send(GetPaperRecord { id: id.clone() }).await.map_err(engine_error)?;
        let Some(p) = p.map_err(engine_error)? else {
            return Err(ContestError::Invalid(format!("paper '{id}' is not in the data")));
        };
        if from.is_some_and(|f| p.submitted < f) || to.is_some_and(|t| p.submitted > t) {
            continue;
        }
        if !pool.iter().any(|q: &PoolPaper| q.id == p.id) {
            pool.push(PoolPaper {
                id: p.id.clone(),
                title: citecast_actors::names::latex_to_unicode(&p.title),
                submitted: dates::format(p.submitted),
            });
        }
    }
    Ok((pool, label))
}

/// Creates a contest, enters the model, and announces it.
pub async fn create(engine: &Engine, new: NewContest, now: i64) -> Result<Contest, ContestError> {
    let title = new.title.trim().to_string();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(ContestError::Invalid("'title' must be 1 to 200 characters".into()));
    }
    if new.rules.len() > 20_000 {
        return Err(ContestError::Invalid("'rules' must be at most 20,000 bytes".into()));
    }
    let target = Target::parse(&new.target).ok_or_else(|| {
        ContestError::Invalid(format!(
            "'target' must be top_10_percent or most_citations_6m, not '{}'",
            new.target
        ))
    })?;
    if new.pick_limit == 0 || new.pick_limit > MAX_PICKS {
        return Err(ContestError::Invalid(format!("'pick_limit' must be 1 to {MAX_PICKS}")));
    }
    let deadline = parse_instant(&new.deadline)?;
    if deadline <= now {
        return Err(ContestError::Invalid("'deadline' must be in the future".into()));
    }
    let as_of = parse_day("as_of", &new.as_of)?;
    let (pool, pool_label) = resolve_pool(engine, &new.pool, as_of).await?;
    if pool.len() < new.pick_limit {
        return Err(ContestError::Invalid(format!(
            "the pool holds {} papers, fewer than the pick limit of {}",
            pool.len(),
            new.pick_limit
        )));
    }
    let contests = Contests::open(&engine.db)?;
    let c = Contest {
        id: contests.next_id()?,
        title,
        rules: new.rules,
        target,
        pool_label,
        pool,
        pick_limit: new.pick_limit,
        deadline,
        as_of: as_of.map(dates::format),
        created: now,
        locked_at: None,
        scored_at: None,
        results: None,
    };
    let stored = c.clone();
    call(move || contests.put(&stored)).await?;
    if let Err(e) = enter_model(engine, &c, now).await {
        // The job enters it on its next run, as long as the contest is open.
        tracing::warn!(contest = %c.id, error = %e, "the model's picks are not made yet");
    }
    announce(
        &engine.db,
        Announcement::ContestOpened {
            contest_id: c.id.clone(),
            title: c.title.clone(),
            path: c.path(),
            deadline,
        },
    );
    Ok(c)
}

fn announce(db: &sled::Db, a: Announcement) {
    if let Err(e) = crate::webhooks::announce(db, a) {
        tracing::warn!(error = %e, "contest announcement not queued");
    }
}

/// The serving model's picks: its `pick_limit` most likely papers of the pool at
/// publication, with its probabilities.
pub async fn enter_model(engine: &Engine, c: &Contest, now: i64) -> Result<Entry, ContestError> {
    let ids = c.pool.iter().map(|p| p.id.clone()).collect();
    let route = Route { caller: Some("contests".into()), ..Route::default() };
    let msg = ForecastPapers { ids, mode: Mode::AtPublication, route };
    let answer = crate::engine::ask(&engine.model, msg, "model engine").await.map_err(engine_error)?;
    let mut forecasts: Vec<_> = answer.map_err(engine_error)?.into_iter().filter_map(Result::ok).collect();
    forecasts.sort_by(|a, b| b.probability.total_cmp(&a.probability).then(a.paper_id.cmp(&b.paper_id)));
    forecasts.truncate(c.pick_limit);
    let Some(version) = forecasts.first().map(|f| f.model_version.clone()) else {
        return Err(ContestError::Engine("no forecast could be made for the pool".into()));
    };
    let entry = Entry {
        contest_id: c.id.clone(),
        entrant: MODEL.into(),
        picks: forecasts
            .into_iter()
            .map(|f| Pick { paper_id: f.paper_id, probability: Some(f.probability) })
            .collect(),
        submitted: now,
        model_version: Some(version),
    };
    let contests = Contests::open(&engine.db)?;
    let e = entry.clone();
    call(move || contests.save_entry(&e, now)).await?;
    audit(engine, "scheduler", "contest.entry", &c.id, None, &entry).await;
    Ok(entry)
}

/// Appends an audit entry for a contest change.
pub async fn audit<T: serde::Serialize>(
    engine: &Engine,
    actor: &str,
    action: &str,
    target: &str,
    before: Option<&T>,
    after: &T,
) {
    let entry = citecast_actors::journal::AuditEntry {
        seq: 0,
        at: dates::now_secs(),
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        before: before.and_then(|b| serde_json::to_string(b).ok()),
        after: serde_json::to_string(after).ok(),
    };
    match engine.store.send(citecast_actors::actors::AppendAudit(entry)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, action, "audit entry not written"),
        Err(e) => tracing::error!(error = %e, action, "audit entry not written"),
    }
}

/// Locks a contest now; answers whether this call locked it.
pub async fn lock(engine: &Engine, id: &str, actor: &str, now: i64) -> Result<bool, ContestError> {
    let contests = Contests::open(&engine.db)?;
    let (cs, key) = (contests.clone(), id.to_string());
    let Some(c) = call(move || cs.lock(&key, now)).await? else { return Ok(false) };
    let key = c.id.clone();
    let entries = call(move || contests.entries(&key)).await?;
    audit(
        engine,
        actor,
        "contest.lock",
        &c.id,
        None,
        &serde_json::json!({ "locked_at": now, "entries": entries.len() }),
    )
    .await;
    announce(
        &engine.db,
        Announcement::ContestLocked {
            contest_id: c.id.clone(),
            title: c.title.clone(),
            path: c.path(),
            entries: entries.len(),
        },
    );
    Ok(true)
}

/// What the data says of each pool paper now.
async fn outcomes(engine: &Engine, c: &Contest) -> Result<Vec<(String, PaperOutcome)>, ContestError> {
    let mut out: Vec<(String, PaperOutcome)> =
        c.pool.iter().map(|p| (p.id.clone(), PaperOutcome::default())).collect();
    match c.target {
        Target::Top10Percent => {
            let ids = c.pool.iter().map(|p| p.id.clone()).collect();
            let route = Route { caller: Some("contests".into()), ..Route::default() };
            let msg = ForecastPapers { ids, mode: Mode::AtPublication, route };
            let answer =
                crate::engine::ask(&engine.model, msg, "model engine").await.map_err(engine_error)?;
            for (slot, f) in out.iter_mut().zip(answer.map_err(engine_error)?) {
                slot.1.reached_top_10_percent =
                    f.ok().and_then(|f| f.outcome).map(|o| o.reached_top_10_percent);
            }
        }
        Target::MostCitations6m => {
            let newest = engine.store.send(RecentPaperIds { limit: 1 }).await.map_err(engine_error)?;
            let data_ends = newest.map_err(engine_error)?.first().map(|(_, d)| *d).unwrap_or(dates::Day::MIN);
            for slot in out.iter_mut() {
                let view = engine.store.send(GetPaper { id: slot.0.clone() }).await.map_err(engine_error)?;
                if let Some(v) = view.map_err(engine_error)? {
                    if dates::add_months(v.paper.submitted, 6) <= data_ends {
                        slot.1.citations_6m = Some(v.citations.within_6_months);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The name an entrant is shown by: the model, or the customer's name (never the address).
pub async fn display_name(accounts: &Arc<dyn AccountStore>, entrant: &str) -> String {
    if entrant == MODEL {
        return "The citecast model".into();
    }
    let (a, id) = (accounts.clone(), entrant.to_string());
    let found = actix_web::rt::task::spawn_blocking(move || a.customer(&id)).await;
    match found {
        Ok(Ok(Some(c))) if !c.name.trim().is_empty() => c.name,
        _ => "A former member".into(),
    }
}

/// Scores a locked contest if the data resolves its target; answers it when scored.
pub async fn score(
    engine: &Engine,
    accounts: &Arc<dyn AccountStore>,
    id: &str,
    actor: &str,
    now: i64,
) -> Result<Option<Contest>, ContestError> {
    let contests = Contests::open(&engine.db)?;
    let (cs, key) = (contests.clone(), id.to_string());
    let (c, entries) = call(move || {
        let c = cs.get(&key)?.ok_or_else(|| ContestError::NotFound(key.clone()))?;
        Ok((c.clone(), cs.entries(&key)?))
    })
    .await?;
    match c.phase(now) {
        Phase::Open => return Err(ContestError::Refused("the contest is still open; lock it first".into())),
        Phase::Scored => return Ok(Some(c)),
        Phase::Locked => {}
    }
    let outcomes = outcomes(engine, &c).await?;
    let Some(relevant) = super::relevant(c.target, &outcomes, c.pick_limit) else { return Ok(None) };
    let scores = super::leaderboard(&entries, &relevant, c.pick_limit);
    let mut scored = c.clone();
    scored.locked_at = scored.locked_at.or(Some(now));
    scored.scored_at = Some(now);
    scored.results =
        Some(super::Results { relevant: relevant.into_iter().collect(), scores: scores.clone() });
    let stored = scored.clone();
    call(move || contests.put(&stored)).await?;
    audit(engine, actor, "contest.score", &c.id, None, &scored.results).await;
    let leader = match scores.first() {
        Some(s) => display_name(accounts, &s.entrant).await,
        None => "nobody".into(),
    };
    let model_rank = scores.iter().find(|s| s.entrant == MODEL).map(|s| s.rank);
    announce(
        &engine.db,
        Announcement::ContestScored {
            contest_id: c.id.clone(),
            title: c.title.clone(),
            path: c.path(),
            leader,
            model_rank,
            entries: scores.len(),
        },
    );
    Ok(Some(scored))
}

/// The job's pass: enters the model where it has no picks yet, locks what passed its
/// deadline, scores what the data resolves. Answers how many steps were taken.
pub async fn tick(engine: &Engine, accounts: &Arc<dyn AccountStore>, now: i64) -> Result<u64, ContestError> {
    let contests = Contests::open(&engine.db)?;
    let cs = contests.clone();
    let all = call(move || cs.all()).await?;
    let mut steps = 0;
    for c in all {
        match c.phase(now) {
            Phase::Open => {
                let (cs, key) = (contests.clone(), c.id.clone());
                if call(move || cs.entry(&key, MODEL)).await?.is_none() {
                    enter_model(engine, &c, now).await?;
                    steps += 1;
                }
            }
            Phase::Locked => {
                if c.locked_at.is_none() && lock(engine, &c.id, "scheduler", now).await? {
                    steps += 1;
                }
                if score(engine, accounts, &c.id, "scheduler", now).await?.is_some() {
                    steps += 1;
                }
            }
            Phase::Scored => {}
        }
    }
    Ok(steps)
}
