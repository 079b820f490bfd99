//! Papers, their citations, and authors.

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use citecast_actors::actors::{GetAuthor, GetCitations, GetPaper, ListCollections};
use citecast_actors::dates;
use citecast_actors::store::{AuthorView, Direction, PaperView};
use percent_encoding::percent_decode_str;

use crate::web::error::ApiError;
use crate::web::params::{encode_cursor, Params};
use crate::web::{cache, get_or_head, AppState, CachedBody, Endpoint, SiteRoute};

const MAX_CITATION_LIMIT: usize = 100;

/// The `/v1` routes of papers, citations, authors and one paper's forecast (served under
/// the paper's path).
pub fn endpoints() -> Vec<Endpoint> {
    use crate::accounts::tiers::Group::*;
    use crate::web::openapi::{path, q, schema_of, Accepts, Op, Param, CURSOR, LIMIT};
    use citecast_actors::forecast::service::Forecast;
    const ID: Param = path("id", "hep-th/9711200, 9711200, a DOI, an OpenAlex id (W123) or URL-encoded");
    const AUTHOR_PARAMS: &[Param] = &[path("key", "e.g. witten_e, or kim_j@physics-x in a collection")];
    const FORECAST_PARAMS: &[Param] = &[
        ID,
        q("mode", "string", "at_publication (default) or early")
            .accepting(Accepts::OneOf(&["at_publication", "early"])),
        q("collection", "string", "only this collection's papers (GET /v1/collections); default: any"),
    ];
    const CITATION_PARAMS: &[Param] = &[
        ID,
        q("direction", "string", "in (default) or out").accepting(Accepts::OneOf(&["in", "out"])),
        LIMIT,
        CURSOR,
    ];
    vec![
        Endpoint {
            path: "/collections",
            route: || get_or_head().to(collections),
            ops: &[Op {
                method: "GET",
                path: "/v1/collections",
                summary: "The collections (one per ingested source) with paper counts and date ranges",
                group: Papers,
                params: &[],
                body: None,
                success: 200,
                also: &[],
                response: Some(schema_of::<CollectionsResponse>),
            }],
        },
        Endpoint {
            path: "/authors/{key}",
            route: || get_or_head().to(author),
            ops: &[Op {
                method: "GET",
                path: "/v1/authors/{key}",
                summary: "An author's papers, co-authors, citation total and h-index",
                group: Authors,
                params: AUTHOR_PARAMS,
                body: None,
                success: 200,
                also: &[],
                response: Some(schema_of::<AuthorResponse>),
            }],
        },
        Endpoint {
            path: "/papers/{tail:.*}",
            route: || get_or_head().to(paper_route),
            ops: &[
                Op {
                    method: "GET",
                    path: "/v1/papers/{id}",
                    summary: "A paper with citation counts (total, 6/12/24 months) and top citing papers",
                    group: Papers,
                    params: &[ID],
                    body: None,
                    success: 200,
                    also: &[],
                    response: Some(schema_of::<PaperResponse>),
                },
                Op {
                    method: "GET",
                    path: "/v1/papers/{id}/forecast",
                    summary: "Forecast: probability the paper becomes highly cited, with its top features",
                    group: Forecasts,
                    params: FORECAST_PARAMS,
                    body: None,
                    success: 200,
                    also: &[422],
                    response: Some(schema_of::<Forecast>),
                },
                Op {
                    method: "GET",
                    path: "/v1/papers/{id}/citations",
                    summary: "Citing (in) or cited (out) papers in date order",
                    group: Papers,
                    params: CITATION_PARAMS,
                    body: None,
                    success: 200,
                    also: &[],
                    response: Some(schema_of::<CitationsResponse>),
                },
            ],
        },
    ]
}

/// The paper pages for people, and the operator's import.
pub fn site_routes() -> Vec<SiteRoute> {
    vec![
        SiteRoute::get("/papers/{tail:.*}", || get_or_head().to(super::page::page)),
        SiteRoute::post("/admin/ingest", || web::post().to(super::admin::ingest)),
    ]
}

/// `/v1/papers/{id}` and `/v1/papers/{id}/citations`. arXiv ids contain a slash
/// (`hep-th/9711200`), so the id is everything after `/v1/papers/`, percent-decoded,
/// up to a known sub-resource suffix.
pub async fn paper_route(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.require_ready()?;
    let rest = req.uri().path().strip_prefix("/v1/papers/").unwrap_or_default();
    let decoded = percent_decode_str(rest)
        .decode_utf8()
        .map_err(|_| ApiError::param("id", "the paper id is not valid UTF-8"))?;
    let path = decoded.trim_end_matches('/');
    if let Some(id) = path.strip_suffix("/forecast") {
        return crate::forecasts::routes::paper_forecast(&req, &state, clean_id(id)?).await;
    }
    match path.strip_suffix("/citations") {
        Some(id) => citations(&req, &state, clean_id(id)?).await,
        None => {
            Params::parse(req.query_string(), &[])?;
            paper(&req, &state, clean_id(path)?).await
        }
    }
}

/// [`super::clean_id`] with its reason as the `id` parameter's error.
fn clean_id(id: &str) -> Result<String, ApiError> {
    super::clean_id(id).map_err(|reason| ApiError::param("id", reason))
}

/// How long clients and CDNs may reuse paper, citation and author responses.
const MAX_AGE_SECS: u32 = 300;

async fn paper(req: &HttpRequest, state: &AppState, id: String) -> Result<HttpResponse, ApiError> {
    let generation = state.engine.data_version.get();
    if let Some(hit) = state.paper_cache.get(&id) {
        if hit.generation == generation {
            state.metrics.cache(true);
            return Ok(cache::json(req, hit.body, &hit.etag, MAX_AGE_SECS));
        }
    }
    state.metrics.cache(false);
    let view = state.engine.store.send(GetPaper { id: id.clone() }).await??;
    let view = view.ok_or(ApiError::NotFound { what: "paper", id: id.clone() })?;
    let body = Bytes::from(serde_json::to_vec(&paper_json(&view)).map_err(ApiError::internal)?);
    let etag = cache::etag_of(&body);
    state
        .paper_cache
        .insert(id, CachedBody { generation, body: body.clone(), etag: etag.clone(), model: None });
    Ok(cache::json(req, body, &etag, MAX_AGE_SECS))
}

/// `GET /v1/papers/{id}`: what a paper response holds (its schema in the OpenAPI
/// document is derived from this type).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PaperResponse {
    pub id: String,
    pub aliases: Vec<String>,
    /// The paper's page: doi.org for a DOI, OpenAlex for a work id, else arXiv.
    pub url: String,
    /// The title with LaTeX accents and symbols as Unicode.
    pub title: String,
    pub title_raw: String,
    pub authors: Vec<AuthorName>,
    /// Submission date, `YYYY-MM-DD`.
    pub submitted: String,
    pub revised: Vec<String>,
    #[serde(rename = "abstract")]
    pub abstract_text: String,
    pub subject: Option<String>,
    pub journal_ref: Option<String>,
    pub comments: Option<String>,
    pub report_no: Option<String>,
    pub citations: citecast_actors::store::CitationCounts,
    /// References to papers in the corpus.
    pub references: u64,
    /// Citing papers, most cited first.
    pub top_citing: Vec<citecast_actors::store::PaperSummary>,
}

/// An author of a paper as shown: the display name, the grouping key and the raw string.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AuthorName {
    pub name: String,
    pub key: String,
    pub raw: String,
}

/// `GET /v1/papers/{id}/citations`: one page of citing or cited papers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CitationsResponse {
    pub paper_id: String,
    /// `in` (who cites it) or `out` (what it cites).
    pub direction: String,
    pub total: u64,
    pub items: Vec<citecast_actors::store::CitationEntry>,
    /// Pass back as `cursor` for the next page; absent at the end.
    pub next_cursor: Option<String>,
}

/// Where a paper lives on the web, from the shape of its canonical id.
fn paper_url(id: &str) -> String {
    if id.starts_with("10.") {
        format!("https://doi.org/{id}")
    } else if id.len() > 1 && id.starts_with('W') && id[1..].bytes().all(|b| b.is_ascii_digit()) {
        format!("https://openalex.org/{id}")
    } else {
        format!("https://arxiv.org/abs/{id}")
    }
}

pub fn paper_json(v: &PaperView) -> PaperResponse {
    let p = &v.paper;
    PaperResponse {
        id: p.id.clone(),
        aliases: p.aliases.clone(),
        url: paper_url(&p.id),
        title: citecast_actors::names::latex_to_unicode(&p.title),
        title_raw: p.title.clone(),
        authors: p
            .authors
            .iter()
            .map(|a| AuthorName { name: a.display.clone(), key: a.key.clone(), raw: a.raw.clone() })
            .collect(),
        submitted: dates::format(p.submitted),
        revised: p.revised.iter().map(|d| dates::format(*d)).collect(),
        abstract_text: p.abstract_text.clone(),
        subject: p.subject.clone(),
        journal_ref: p.journal_ref.clone(),
        comments: p.comments.clone(),
        report_no: p.report_no.clone(),
        citations: v.citations.clone(),
        references: v.references,
        top_citing: v.top_citing.clone(),
    }
}

async fn citations(req: &HttpRequest, state: &AppState, id: String) -> Result<HttpResponse, ApiError> {
    let p = Params::parse(req.query_string(), &["direction", "limit", "cursor"])?;
    let direction = match p.get("direction").unwrap_or("in") {
        "in" => Direction::In,
        "out" => Direction::Out,
        other => {
            return Err(ApiError::param(
                "direction",
                format!("'direction' must be 'in' or 'out', got '{other}'"),
            ))
        }
    };
    let limit = p.int("limit", 20, 1, MAX_CITATION_LIMIT)?;
    let cursor = p.cursor()?;
    if cursor.as_deref().is_some_and(|c| !citecast_actors::store::is_citation_cursor(c)) {
        return Err(ApiError::param("cursor", "'cursor' is not a citations cursor returned by this API"));
    }
    let msg = GetCitations { id: id.clone(), direction, cursor, limit };
    let (canonical, page) =
        state.engine.store.send(msg).await??.ok_or(ApiError::NotFound { what: "paper", id: id.clone() })?;
    let body = CitationsResponse {
        paper_id: canonical,
        direction: match direction {
            Direction::In => "in",
            Direction::Out => "out",
        }
        .to_string(),
        total: page.total,
        items: page.items,
        next_cursor: page.next_cursor.as_deref().map(encode_cursor),
    };
    let body = serde_json::to_value(&body).map_err(ApiError::internal)?;
    Ok(cache::json_value(req, &body, MAX_AGE_SECS))
}

pub async fn author(
    req: HttpRequest,
    key: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.require_ready()?;
    Params::parse(req.query_string(), &[])?;
    let key = key.into_inner();
    if key.is_empty() || key.len() > 128 {
        return Err(ApiError::param("key", "the author key must be 1 to 128 characters"));
    }
    let view = state.engine.store.send(GetAuthor { key: key.clone() }).await??;
    let view = view.ok_or(ApiError::NotFound { what: "author", id: key })?;
    Ok(cache::json_value(&req, &author_json(&view), MAX_AGE_SECS))
}

/// `GET /v1/collections`: every collection holding papers, by name.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CollectionsResponse {
    pub collections: Vec<CollectionEntry>,
}

/// One collection: its name (the `collection` of `/v1/search`), papers and dates.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CollectionEntry {
    pub name: String,
    pub papers: u64,
    /// Earliest submission, `YYYY-MM-DD`.
    pub first_submitted: Option<String>,
    /// Latest submission, `YYYY-MM-DD`.
    pub last_submitted: Option<String>,
}

pub async fn collections(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.require_ready()?;
    Params::parse(req.query_string(), &[])?;
    let list = state.engine.store.send(ListCollections).await??;
    let body = CollectionsResponse {
        collections: list
            .into_iter()
            .map(|c| CollectionEntry {
                name: c.name,
                papers: c.papers,
                first_submitted: c.first_day.map(dates::format),
                last_submitted: c.last_day.map(dates::format),
            })
            .collect(),
    };
    let body = serde_json::to_value(&body).map_err(ApiError::internal)?;
    Ok(cache::json_value(&req, &body, MAX_AGE_SECS))
}

/// `GET /v1/authors/{key}` (its OpenAPI schema is derived from this type).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AuthorResponse {
    pub key: String,
    pub name: String,
    /// Distinct spellings seen.
    pub spellings: Vec<String>,
    pub paper_count: usize,
    /// Citations of the author's papers within the corpus.
    pub citations_total: u64,
    pub h_index: u64,
    /// Newest first.
    pub papers: Vec<citecast_actors::store::PaperSummary>,
    pub coauthors: Vec<citecast_actors::store::CoAuthor>,
}

fn author_json(v: &AuthorView) -> serde_json::Value {
    let body = AuthorResponse {
        key: v.author.key.clone(),
        name: v.author.name.clone(),
        spellings: v.author.variants.clone(),
        paper_count: v.papers.len(),
        citations_total: v.citations_total,
        h_index: v.h_index,
        papers: v.papers.clone(),
        coauthors: v.coauthors.clone(),
    };
    serde_json::to_value(&body).unwrap_or(serde_json::Value::Null)
}
