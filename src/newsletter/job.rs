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
        run: |ctx| Box::pin(async move { newsletter(&ctx.engine, &ctx.issues).await }),
    }]
}

/// Papers in a newsletter issue.
const NEWSLETTER_ITEMS: usize = 10;

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
    let route = Route { caller: Some("scheduler".into()), arm: None };
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
    let (number, new) = call(issues, move |s| s.save(issue)).await.map_err(fail)?;
    tracing::info!(number, new, "newsletter issue");
    Ok(if new { n } else { 0 })
}
