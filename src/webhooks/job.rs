//! The webhooks' jobs: `webhooks` (every minute: sends the deliveries whose retry time
//! has come, so nothing waits on the thread an announcement starts; drops delivered
//! records after 30 days) and `top_forecast` (weekly: announces the serving model's most
//! likely paper of the latest week of submissions, once per week).

use citecast_actors::actors::{ForecastPapers, GetPaperRecord, RecentPaperIds};
use citecast_actors::forecast::service::Route;
use citecast_actors::forecast::task::Mode;

use super::{Announcement, Policy, Webhooks};
use crate::ops::jobs::{fail, spec, Job};

pub fn jobs() -> Vec<Job> {
    vec![
        Job {
            spec: spec("webhooks", "every 1m", 60, None),
            run: |ctx| {
                Box::pin(async move {
                    let db = ctx.engine.db.clone();
                    let report = actix_web::rt::task::spawn_blocking(move || {
                        let now = citecast_actors::dates::now_secs();
                        let report = super::deliver_due(&db, &Policy::default(), now)?;
                        Webhooks::open(&db)?.prune_delivered(now - 30 * 86_400)?;
                        Ok::<_, super::WebhookError>(report)
                    })
                    .await
                    .map_err(fail)?
                    .map_err(fail)?;
                    Ok((report.delivered + report.failed + report.dead) as u64)
                })
            },
        },
        Job {
            spec: spec("top_forecast", "weekly mon 06:30", 600, None),
            run: |ctx| Box::pin(async move { top_forecast(&ctx.engine).await }),
        },
    ]
}

/// Announces the week's top forecast unless this week's was announced already.
async fn top_forecast(engine: &citecast_actors::Engine) -> crate::ops::jobs::JobResult {
    let recent = engine.store.send(RecentPaperIds { limit: 5_000 }).await.map_err(fail)?.map_err(fail)?;
    let Some(&(_, week_to)) = recent.first() else { return Ok(0) };
    let ids: Vec<String> =
        recent.into_iter().take_while(|(_, d)| *d >= week_to - 6).map(|(id, _)| id).collect();
    let route = Route { caller: Some("scheduler".into()), ..Route::default() };
    let msg = ForecastPapers { ids, mode: Mode::AtPublication, route };
    let forecasts = engine.model.send(msg).await.map_err(fail)?.map_err(fail)?;
    let Some(top) =
        forecasts.into_iter().filter_map(Result::ok).max_by(|a, b| a.probability.total_cmp(&b.probability))
    else {
        return Ok(0);
    };
    let week = citecast_actors::dates::format(week_to);
    let meta = engine.db.open_tree("webhook_meta").map_err(fail)?;
    if meta.get("top_forecast_week").map_err(fail)?.is_some_and(|v| v.as_ref() == week.as_bytes()) {
        return Ok(0);
    }
    let paper =
        engine.store.send(GetPaperRecord { id: top.paper_id.clone() }).await.map_err(fail)?.map_err(fail)?;
    let title = paper.map(|p| citecast_actors::names::latex_to_unicode(&p.title)).unwrap_or_default();
    let a = Announcement::TopForecast {
        path: crate::papers::page::href(&top.paper_id),
        paper_id: top.paper_id,
        title,
        probability: top.probability,
        week_to: week.clone(),
    };
    let n = super::announce(&engine.db, a).map_err(fail)?;
    meta.insert("top_forecast_week", week.as_bytes()).map_err(fail)?;
    Ok(n as u64)
}
