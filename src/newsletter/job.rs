//! The `newsletter` job: weekly, builds the issue of the latest week of submissions.

use citecast_actors::actors::{ForecastPapers, RecentPaperIds};
use citecast_actors::dates::now_secs;
use citecast_actors::forecast::service::Route;
use citecast_actors::forecast::task::Mode;
use citecast_actors::Engine;

use crate::ops::jobs::{fail, spec, Job, JobResult};

pub fn jobs() -> Vec<Job> {
    vec![Job {
        spec: spec("newsletter", "weekly mon 06:00", 600, None),
        run: |ctx| {
            Box::pin(async move {
                let built = newsletter(&ctx.engine, &ctx.issues).await?;
                let queued = personal_issues(&ctx.engine, &ctx.issues).await?;
                Ok(built + queued)
            })
        },
    }]
}

/// Papers in a newsletter issue.
const NEWSLETTER_ITEMS: usize = 10;
/// Papers per subject in a reader's issue, and in the general section of a reader who
/// follows no subject.
const PER_SECTION: usize = 3;
const GENERAL_ITEMS: usize = 5;

/// The week's papers with their forecasts, most likely first (every paper, not only the
/// issue's top ten: readers' subjects reach further down).
async fn week_items(engine: &Engine, ids: Vec<String>) -> Result<Vec<super::Item>, (u64, String)> {
    use citecast_actors::actors::GetPaperRecord;
    let route = Route { caller: Some("scheduler".into()), ..Route::default() };
    let msg = ForecastPapers { ids, mode: Mode::AtPublication, route };
    let mut forecasts: Vec<_> = engine
        .model
        .send(msg)
        .await
        .map_err(fail)?
        .map_err(fail)?
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    forecasts.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    let mut items = Vec::with_capacity(forecasts.len());
    for f in forecasts {
        let Some(paper) = engine
            .store
            .send(GetPaperRecord { id: f.paper_id.clone() })
            .await
            .map_err(fail)?
            .map_err(fail)?
        else {
            continue;
        };
        items.push(super::Item {
            why: f.top_features.first().map(|c| c.sentence.clone()).unwrap_or_default(),
            paper_id: f.paper_id,
            title: paper.title,
            authors: paper.authors.into_iter().map(|a| a.display).collect(),
            submitted: citecast_actors::dates::format(paper.submitted),
            probability: f.probability,
            label: f.label,
        });
    }
    Ok(items)
}

/// Builds every confirmed reader's copy of the latest issue and queues it: per subject
/// (and saved search) the week's most likely papers matching it, a general section for
/// readers who follow none, each paper shown to a reader at most once across issues.
/// Copies already queued are kept, so a run after a crash completes the rest.
async fn personal_issues(
    engine: &Engine,
    issues: &std::sync::Arc<dyn super::store::IssueStore>,
) -> JobResult {
    use super::store::call;
    use citecast_actors::actors::Search;
    use citecast_actors::index::SearchRequest;
    let Some(issue) = call(issues, |s| s.list()).await.map_err(fail)?.into_iter().next() else {
        return Ok(0);
    };
    let subscribers = super::store::Subscribers::open(&engine.db).map_err(fail)?;
    let subs = subscribers.clone();
    let readers: Vec<super::subscribers::Subscriber> =
        actix_web::rt::task::spawn_blocking(move || subs.all())
            .await
            .map_err(fail)?
            .map_err(fail)?
            .into_iter()
            .filter(|s| s.state == super::subscribers::SubscriberState::Confirmed)
            .collect();
    if readers.is_empty() {
        return Ok(0);
    }
    let (Some(from), Some(to)) =
        (citecast_actors::dates::parse(&issue.week_from), citecast_actors::dates::parse(&issue.week_to))
    else {
        return Err(fail(format!("issue {} has unreadable dates", issue.number)));
    };
    let recent = engine.store.send(RecentPaperIds { limit: 5_000 }).await.map_err(fail)?.map_err(fail)?;
    let ids: Vec<String> =
        recent.into_iter().filter(|(_, d)| *d >= from && *d <= to).map(|(id, _)| id).collect();
    let items = week_items(engine, ids).await?;
    // Each distinct subject or search runs once against the index, limited to the week.
    let mut queries: std::collections::BTreeSet<String> = Default::default();
    for r in &readers {
        queries
            .extend(r.topics.iter().filter_map(|t| super::subscribers::topic_query(t)).map(str::to_string));
        queries.extend(r.searches.iter().cloned());
    }
    let mut matches = std::collections::HashMap::new();
    for q in queries {
        let req = SearchRequest {
            query: q.clone(),
            from: Some(from),
            to: Some(to),
            author_key: None,
            collection: None,
            offset: 0,
            limit: 1000,
        };
        let hits = match engine.index.send(Search(req)).await.map_err(fail)? {
            Ok(r) => r.hits.into_iter().map(|h| h.id).collect(),
            // A reader's search the index cannot parse matches nothing; it is theirs to fix.
            Err(e) => {
                tracing::warn!(query = %q, error = %e, "a newsletter search failed");
                std::collections::HashSet::new()
            }
        };
        matches.insert(q, hits);
    }
    let number = issue.number;
    let queued = actix_web::rt::task::spawn_blocking(move || {
        build_personal(&subscribers, number, &readers, &items, &matches, now_secs())
    })
    .await
    .map_err(fail)?
    .map_err(fail)?;
    tracing::info!(issue = number, queued, "newsletter copies queued");
    Ok(queued as u64)
}

/// Picks and queues each reader's sections (see [`personal_issues`]); answers how many
/// copies were newly queued. Plain and synchronous, so the bench can time it.
pub fn build_personal(
    subscribers: &super::store::Subscribers,
    issue: u32,
    readers: &[super::subscribers::Subscriber],
    items: &[super::Item],
    matches: &std::collections::HashMap<String, std::collections::HashSet<String>>,
    now: i64,
) -> Result<usize, super::NewsletterError> {
    use super::subscribers::{topic_label, topic_query, Section};
    let mut queued = 0;
    for r in readers {
        let mut shown: std::collections::HashSet<&str> = Default::default();
        let fresh = |it: &super::Item,
                     shown: &mut std::collections::HashSet<&str>|
         -> Result<bool, super::NewsletterError> {
            Ok(!shown.contains(it.paper_id.as_str()) && !subscribers.has_seen(&r.id, &it.paper_id)?)
        };
        let mut sections = Vec::new();
        let mut wanted: Vec<(String, &str)> =
            r.topics.iter().filter_map(|t| Some((topic_label(t)?.to_string(), topic_query(t)?))).collect();
        wanted.extend(r.searches.iter().map(|q| (format!("Your search: {q}"), q.as_str())));
        for (title, query) in wanted {
            let Some(hits) = matches.get(query) else { continue };
            let mut picked = Vec::new();
            for it in items.iter().filter(|it| hits.contains(&it.paper_id)) {
                if picked.len() == PER_SECTION {
                    break;
                }
                if fresh(it, &mut shown)? {
                    shown.insert(it.paper_id.as_str());
                    picked.push(it.clone());
                }
            }
            if !picked.is_empty() {
                sections.push(Section { title, items: picked });
            }
        }
        if r.topics.is_empty() && r.searches.is_empty() {
            let mut picked = Vec::new();
            for it in items {
                if picked.len() == GENERAL_ITEMS {
                    break;
                }
                if fresh(it, &mut shown)? {
                    shown.insert(it.paper_id.as_str());
                    picked.push(it.clone());
                }
            }
            sections.push(Section { title: "This week's top forecasts".into(), items: picked });
        }
        if subscribers.enqueue(issue, &r.id, sections, now)? {
            queued += 1;
        }
    }
    Ok(queued)
}

/// Builds this week's newsletter issue: the papers of the latest week of submissions in
/// the data, ranked by the serving `at_publication` model, the top ten kept. A week
/// already built is not built again.
async fn newsletter(engine: &Engine, issues: &std::sync::Arc<dyn super::store::IssueStore>) -> JobResult {
    use super::store::call;
    use super::{Issue, Item};
    use citecast_actors::actors::GetPaperRecord;
    let recent = engine.store.send(RecentPaperIds { limit: 5_000 }).await.map_err(fail)?.map_err(fail)?;
    let Some(&(_, week_to)) = recent.first() else { return Ok(0) };
    let week_from = week_to - 6;
    let ids: Vec<String> =
        recent.into_iter().take_while(|(_, d)| *d >= week_from).map(|(id, _)| id).collect();
    let route = Route { caller: Some("scheduler".into()), ..Route::default() };
    let msg = ForecastPapers { ids: ids.clone(), mode: Mode::AtPublication, route };
    let mut forecasts: Vec<_> = engine
        .model
        .send(msg)
        .await
        .map_err(fail)?
        .map_err(fail)?
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    forecasts.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    forecasts.truncate(NEWSLETTER_ITEMS);
    let Some(model_version) = forecasts.first().map(|f| f.model_version.clone()) else { return Ok(0) };
    let mut items = Vec::new();
    for f in forecasts {
        let paper = engine
            .store
            .send(GetPaperRecord { id: f.paper_id.clone() })
            .await
            .map_err(fail)?
            .map_err(fail)?
            .ok_or_else(|| (0, format!("paper {} vanished while the issue was built", f.paper_id)))?;
        let why = f.top_features.first().map(|c| c.sentence.clone()).unwrap_or_default();
        items.push(Item {
            paper_id: f.paper_id,
            title: paper.title,
            authors: paper.authors.into_iter().map(|a| a.display).collect(),
            submitted: citecast_actors::dates::format(paper.submitted),
            probability: f.probability,
            label: f.label,
            why,
        });
    }
    let issue = Issue {
        number: 0,
        built_at: now_secs(),
        week_from: citecast_actors::dates::format(week_from),
        week_to: citecast_actors::dates::format(week_to),
        model_version,
        papers_considered: ids.len(),
        items,
    };
    let n = issue.items.len() as u64;
    let (week_from, week_to) = (issue.week_from.clone(), issue.week_to.clone());
    let headline = issue.items.first().map(|i| i.plain_title()).unwrap_or_default();
    let (number, new) = call(issues, move |s| s.save(issue)).await.map_err(fail)?;
    tracing::info!(number, new, "newsletter issue");
    if new {
        // Slack, Discord and JSON endpoints hear of it; delivery happens on its own thread.
        let announced = crate::webhooks::Announcement::NewsletterIssue {
            number: number as u64,
            week_from,
            week_to,
            path: format!("/newsletter/{number}"),
            headline,
        };
        if let Err(e) = crate::webhooks::announce(&engine.db, announced) {
            tracing::warn!(error = %e, "the new issue was not announced to webhooks");
        }
    }
    Ok(if new { n } else { 0 })
}
