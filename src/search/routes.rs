//! `GET /v1/search`: BM25 search with date and author filters, snippets, year facets
//! and cursor pagination.

use actix_web::{web, HttpRequest, HttpResponse};
use citecast_actors::actors::{ListCollections, SearchWith};
use citecast_actors::index::{Facets as Compute, SearchRequest, TOTAL_BOUND};
use citecast_actors::names;
use citecast_actors::store::check_collection_name;

use crate::web::error::ApiError;
use crate::web::params::{encode_cursor, Params};
use crate::web::{cache, get_or_head, AppState, Endpoint};

const MAX_LIMIT: usize = 100;

/// The search route.
pub fn endpoints() -> Vec<Endpoint> {
    use crate::accounts::tiers::Group::*;
    use crate::web::openapi::{date, q, schema_of, Accepts, Op, Param, CURSOR, LIMIT};
    const SEARCH_PARAMS: &[Param] = &[
        Param { required: true, ..q("q", "string", "words to search for").accepting(Accepts::Length(500)) },
        date("from", "submitted on or after YYYY-MM-DD"),
        date("to", "submitted on or before YYYY-MM-DD"),
        q("author", "string", "author key (witten_e, kim_j@physics-x) or name")
            .accepting(Accepts::Length(200)),
        q("collection", "string", "only papers of this collection (see /v1/collections)")
            .accepting(Accepts::Length(40)),
        q("facets", "string", "years (default: year facets and an exact total) or none (faster: no facets, total exact up to 10,000)")
            .accepting(Accepts::OneOf(&["years", "none"])),
        LIMIT,
        CURSOR,
    ];
    vec![Endpoint {
        path: "/search",
        route: || get_or_head().to(search),
        ops: &[Op {
            method: "GET",
            path: "/v1/search",
            summary: "BM25 search with snippets, year facets and cursor pagination",
            group: Search,
            params: SEARCH_PARAMS,
            body: None,
            success: 200,
            also: &[],
            response: Some(schema_of::<SearchResponse>),
        }],
    }]
}
const MAX_QUERY_CHARS: usize = 500;
const _: () = assert!(TOTAL_BOUND == 10_000, "the parameter and field docs say 10,000");

/// Search cursors carry the offset of the next hit. Depth is not capped: tantivy ranks
/// `offset + limit` documents, which stays cheap at this corpus size.
fn decode_offset(bytes: &[u8]) -> Option<usize> {
    std::str::from_utf8(bytes).ok()?.strip_prefix("o:")?.parse().ok()
}

/// Whether `a` is an author key as the API returns it: `[a-z0-9_]`, then for a paper of
/// a collection other than the default one `@` and the collection's name.
fn is_author_key(a: &str) -> bool {
    let (key, collection) = a.split_once('@').unwrap_or((a, ""));
    !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && (!a.contains('@') || check_collection_name(collection).is_ok())
}

pub async fn search(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.require_ready()?;
    let p = Params::parse(
        req.query_string(),
        &["q", "from", "to", "author", "collection", "facets", "limit", "cursor"],
    )?;
    let query = p.get("q").map(str::trim).unwrap_or_default().to_string();
    if query.is_empty() {
        return Err(ApiError::param("q", "'q' is required: the words to search for"));
    }
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::param("q", format!("'q' is longer than {MAX_QUERY_CHARS} characters")));
    }
    let (from, to) = (p.date("from")?, p.date("to")?);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::param("from", "'from' is after 'to'"));
        }
    }
    let author_key = match p.get("author") {
        None => None,
        // A key as returned by the API ("witten_e", "kim_j@physics-x" in a collection), or
        // a name to normalise ("E. Witten").
        Some(a) if is_author_key(a) => Some(a.to_string()),
        Some(a) => Some(
            names::normalise_author(a)
                .ok_or_else(|| ApiError::param("author", format!("'author' has no usable name: '{a}'")))?
                .key,
        ),
    };
    let collection = match p.get("collection") {
        None => None,
        Some(name) => {
            let known = state.engine.store.send(ListCollections).await??;
            if check_collection_name(name).is_err() || !known.iter().any(|c| c.name == name) {
                let names: Vec<&str> = known.iter().map(|c| c.name.as_str()).collect();
                return Err(ApiError::param(
                    "collection",
                    format!("unknown collection '{name}': expected one of {}", names.join(", ")),
                ));
            }
            Some(name.to_string())
        }
    };
    // Authors are keyed per collection: a plain key or name searched within a
    // collection means that collection's author.
    let author_key = match (author_key, &collection) {
        (Some(key), Some(c)) if !key.contains('@') => Some(citecast_actors::store::author_key_in(&key, c)),
        (key, _) => key,
    };
    let facets = match p.get("facets").unwrap_or("years") {
        "years" => Compute::Years,
        "none" => Compute::None,
        other => {
            return Err(ApiError::param(
                "facets",
                format!("'facets' must be 'years' or 'none', got '{other}'"),
            ))
        }
    };
    let limit = p.int("limit", 10, 1, MAX_LIMIT)?;
    let offset = match p.cursor()? {
        None => 0,
        Some(c) => decode_offset(&c).ok_or_else(|| {
            ApiError::param("cursor", "'cursor' is not a search cursor returned by this API")
        })?,
    };
    let request = SearchRequest {
        query: query.clone(),
        from,
        to,
        author_key: author_key.clone(),
        collection: collection.clone(),
        offset,
        limit,
    };
    let results = state.engine.index.send(SearchWith(request, facets)).await??;
    let next = offset + results.hits.len();
    // Past a bounded total the matches go on: a full page promises another.
    let more = next < results.total as usize || (results.total_is_lower_bound && results.hits.len() == limit);
    let next_cursor = more.then(|| encode_cursor(format!("o:{next}").as_bytes()));
    let body = SearchResponse {
        query,
        filters: Filters {
            from: p.get("from").map(str::to_string),
            to: p.get("to").map(str::to_string),
            author: author_key,
            collection,
        },
        total: results.total,
        total_is_lower_bound: results.total_is_lower_bound,
        hits: results.hits,
        facets: Facets { years: results.years },
        next_cursor,
    };
    Ok(cache::json_value(&req, &serde_json::to_value(&body).map_err(ApiError::internal)?, 60))
}

/// `GET /v1/search`: one page of hits (its OpenAPI schema is derived from this type).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SearchResponse {
    pub query: String,
    pub filters: Filters,
    /// Matching papers: exact, unless `total_is_lower_bound`.
    pub total: u64,
    /// True when `total` is a lower bound: with `facets=none` the count stops at 10,000
    /// matches (the bound) instead of visiting them all. Always false with year facets.
    pub total_is_lower_bound: bool,
    pub hits: Vec<citecast_actors::index::SearchHit>,
    pub facets: Facets,
    /// Pass back as `cursor` for the next page; absent at the end.
    pub next_cursor: Option<String>,
}

/// The filters the search applied, as given.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Filters {
    pub from: Option<String>,
    pub to: Option<String>,
    /// The author key the `author` parameter resolved to.
    pub author: Option<String>,
    /// The collection searched, when limited to one.
    pub collection: Option<String>,
}

/// Hits per submission year; empty with `facets=none`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Facets {
    pub years: Vec<citecast_actors::index::YearCount>,
}
