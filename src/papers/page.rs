//! `/papers/{id}`: a paper's public page for people: what it is, its citations over
//! time, and its forecasts in plain words (the same glossary the API and newsletter use).
//! The JSON behind it is `/v1/papers/{id}` and `/v1/papers/{id}/forecast`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use citecast_actors::actors::{ForecastPapers, GetCitations, GetPaper, ListModels};
use citecast_actors::dates;
use citecast_actors::forecast::service::{Forecast, ForecastError, Route};
use citecast_actors::forecast::task::Mode;
use citecast_actors::store::{Direction, PaperSummary};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use crate::web::error::{ask, ApiError};
use crate::web::page::{html, ErrorPage};
use crate::web::AppState;

/// Citing papers read for the chart, at most (pages of 1,000): a paper cited more often
/// is charted from its first 50,000 citations and the page says so.
const CHART_PAGES: usize = 50;
const PAGE: usize = 1000;

/// Characters escaped in a paper id inside a link (the `/` of old arXiv ids stays).
const ID_IN_PATH: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'?').add(b'<').add(b'>');

/// The page's link to a paper.
pub fn href(id: &str) -> String {
    format!("/papers/{}", utf8_percent_encode(id, ID_IN_PATH))
}

struct Citing {
    href: String,
    title: String,
    submitted: String,
    citations: u64,
}

/// One forecast as the page tells it.
struct ForecastView {
    heading: &'static str,
    /// "34 %", or `None` when no forecast could be made (then `note` says why).
    probability: Option<String>,
    verdict: String,
    note: String,
    reasons: Vec<String>,
    outcome: Option<String>,
}

#[derive(Template)]
#[template(path = "paper.html")]
struct PaperPage {
    id: String,
    json_href: String,
    title: String,
    authors: String,
    submitted: String,
    revised: Vec<String>,
    arxiv: Option<String>,
    journal_ref: Option<String>,
    abstract_text: String,
    citations: citecast_actors::store::CitationCounts,
    references: u64,
    chart: String,
    chart_note: Option<String>,
    top_citing: Vec<Citing>,
    forecasts: Vec<ForecastView>,
    discussion: Option<crate::community::page::Discussion>,
}

fn problem(status: StatusCode, title: &str, message: String) -> Result<HttpResponse, ApiError> {
    let page =
        ErrorPage { title, message: &message, back: "/newsletter", back_label: "The newsletter's picks" };
    let mut resp = html(status, page.render(), 0)?;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static("5"),
        );
    }
    Ok(resp)
}

pub async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: actix_session::Session,
) -> Result<HttpResponse, ApiError> {
    let rest = req.path().strip_prefix("/papers/").unwrap_or_default();
    let Ok(decoded) = percent_decode_str(rest).decode_utf8() else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Not a paper id",
            "The address does not hold a valid paper id.".into(),
        );
    };
    let Ok(id) = super::clean_id(decoded.trim_end_matches('/')) else {
        let message = "A paper id is 1 to 128 characters, e.g. /papers/hep-th/9711200.".to_string();
        return problem(StatusCode::BAD_REQUEST, "Not a paper id", message);
    };
    if !state.is_ready() {
        let message = "The server is still loading its data; try again in a few seconds.".to_string();
        return problem(StatusCode::SERVICE_UNAVAILABLE, "Starting up", message);
    }
    let Some(view) = state.engine.store.send(GetPaper { id: id.clone() }).await?? else {
        let message = format!("No paper '{id}' is in this server's data.");
        return problem(StatusCode::NOT_FOUND, "Paper not found", message);
    };
    let p = &view.paper;
    let (chart, chart_note) = citation_chart(&state, &p.id, dates::year_of(p.submitted)).await?;
    let forecasts = forecasts(&state, &p.id).await;
    // The discussion is personal (the reader's own edit links and form token): a page
    // with it for a signed-in reader is never cached; a store failure leaves it out.
    let discussion =
        match crate::community::page::discussion(&state, &session, req.query_string(), &p.id).await {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(paper = %p.id, error = %e, "paper page discussion failed");
                None
            }
        };
    let personal = discussion.as_ref().is_some_and(|d| d.signed_in);
    let page = PaperPage {
        id: p.id.clone(),
        json_href: format!("/v1{}", href(&p.id)),
        title: citecast_actors::names::latex_to_unicode(&p.title),
        authors: p.authors.iter().map(|a| a.display.as_str()).collect::<Vec<_>>().join(", "),
        submitted: dates::format(p.submitted),
        revised: p.revised.iter().map(|d| dates::format(*d)).collect(),
        arxiv: crate::papers::arxiv_url(&p.id),
        journal_ref: p.journal_ref.clone(),
        abstract_text: p.abstract_text.trim().to_string(),
        citations: view.citations.clone(),
        references: view.references,
        chart,
        chart_note,
        top_citing: view.top_citing.iter().map(citing).collect(),
        forecasts,
        discussion,
    };
    if personal {
        return crate::web::page::private_html(StatusCode::OK, page.render());
    }
    // Short: new comments should show soon.
    html(StatusCode::OK, page.render(), 30)
}

fn citing(s: &PaperSummary) -> Citing {
    Citing {
        href: href(&s.id),
        title: citecast_actors::names::latex_to_unicode(&s.title),
        submitted: s.submitted.clone(),
        citations: s.citations,
    }
}

/// Citations per year from the paper's own year to its latest citation, as an SVG bar
/// chart, and a note when only the first citations could be read.
async fn citation_chart(
    state: &AppState,
    id: &str,
    from_year: i32,
) -> Result<(String, Option<String>), ApiError> {
    let mut per_year: std::collections::BTreeMap<i32, u64> = Default::default();
    let mut cursor = None;
    let mut truncated = false;
    for page in 0.. {
        if page == CHART_PAGES {
            truncated = true;
            break;
        }
        let msg = GetCitations { id: id.to_string(), direction: Direction::In, cursor, limit: PAGE };
        let Some((_, got)) = state.engine.store.send(msg).await?? else { break };
        for c in &got.items {
            if let Some(year) = c.date.get(..4).and_then(|y| y.parse::<i32>().ok()) {
                *per_year.entry(year).or_default() += 1;
            }
        }
        match got.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let last = per_year.keys().next_back().copied().unwrap_or(from_year).max(from_year);
    let first = per_year.keys().next().copied().unwrap_or(from_year).min(from_year);
    let bars: Vec<(String, u64)> = if per_year.is_empty() {
        Vec::new()
    } else {
        (first..=last).map(|y| (y.to_string(), per_year.get(&y).copied().unwrap_or(0))).collect()
    };
    let note = truncated.then(|| format!("Charted from its first {} citations.", CHART_PAGES * PAGE));
    Ok((crate::web::charts::bars_svg(&bars, 600, 140, "citations per year"), note))
}

/// The paper's forecasts in both modes, or why one could not be made.
async fn forecasts(state: &AppState, id: &str) -> Vec<ForecastView> {
    let models = ask(&state.engine.model, ListModels, "model engine").await.unwrap_or_default();
    let mut out = Vec::new();
    for mode in Mode::ALL {
        let heading = match mode {
            Mode::AtPublication => "At publication",
            Mode::Early => "After its first six months",
        };
        let unavailable = |note: String| ForecastView {
            heading,
            probability: None,
            verdict: String::new(),
            note,
            reasons: Vec::new(),
            outcome: None,
        };
        if state.require_warm_models().is_err() {
            out.push(unavailable(
                "The forecast models are warming up after a start; reload in a minute.".into(),
            ));
            continue;
        }
        let msg = ForecastPapers { ids: vec![id.to_string()], mode, route: Route::default() };
        let result = match ask(&state.engine.model, msg, "model engine").await {
            Ok(Ok(mut results)) => {
                results.pop().unwrap_or_else(|| Err(ForecastError::Invalid("no forecast".into())))
            }
            Ok(Err(e)) => Err(e),
            Err(e) => Err(ForecastError::Unavailable(e.to_string())),
        };
        match result {
            Ok(f) => out.push(told(heading, f, &models)),
            Err(ForecastError::TooYoung { data_ends, .. }) => out.push(unavailable(format!(
                "Its first six months are not in the data yet (the data ends on {data_ends})."
            ))),
            Err(ForecastError::NoModel(_)) => {
                out.push(unavailable("No model for this forecast is loaded.".into()))
            }
            Err(e) => {
                tracing::warn!(paper = id, mode = mode.as_str(), error = %e, "paper page forecast failed");
                out.push(unavailable(
                    "The forecast could not be computed just now; reload to try again.".into(),
                ))
            }
        }
    }
    out
}

/// A forecast in words: the probability, what the model's "likely" mark is worth, the
/// reasons in the glossary's sentences, and what happened when the data already shows it.
fn told(
    heading: &'static str,
    f: Forecast,
    models: &[citecast_actors::forecast::service::ModelSummary],
) -> ForecastView {
    let f = f.for_people();
    let percent = |p: f64| crate::web::charts::format_value(p, "%").replace('%', " %");
    // Three significant digits would show 0.9996 as "100 %", a certainty no model has.
    let chance = |p: f64| match p {
        p if p > 0.999 => "over 99.9 %".to_string(),
        p if p < 0.001 => "under 0.1 %".to_string(),
        p => percent(p),
    };
    let verdict = if f.label == "high" {
        format!("Marked likely: at or above the model's threshold of {}.", percent(f.threshold))
    } else {
        format!("Below the model's threshold of {} for a likely mark.", percent(f.threshold))
    };
    let note = match models.iter().find(|m| m.version == f.model_version) {
        Some(m) if m.test.precision.is_finite() => format!(
            "Model {}: of the test-year papers it marked likely, {:.0} % did reach their year's top 10 %.",
            f.model_version,
            m.test.precision * 100.0
        ),
        _ => format!("Model {}.", f.model_version),
    };
    let outcome = f.outcome.as_ref().map(|o| {
        let reached = if o.reached_top_10_percent { "reached" } else { "did not reach" };
        let needed = o.top_10_percent_needed.map(|n| format!(" (it needed {n:.0})")).unwrap_or_default();
        format!(
            "What happened: {} citations in its two years to {}; it {reached} its year's top 10 %{needed}.",
            o.citations_in_window, o.window_ends
        )
    });
    ForecastView {
        heading,
        probability: Some(chance(f.probability)),
        verdict,
        note,
        reasons: f
            .top_features
            .iter()
            .map(|c| {
                let effect = if c.contribution >= 0.0 { "raises the chance" } else { "lowers the chance" };
                format!("{}: {effect}", c.sentence)
            })
            .collect(),
        outcome,
    }
}
