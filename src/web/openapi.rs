//! The OpenAPI 3 document, generated from the same endpoint table that registers the
//! routes (see [`crate::web::v1_endpoints`]), so a route cannot exist undocumented.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{json, Map, Value};

use crate::accounts::tiers::Group;
use crate::web::error::ApiError;
use crate::web::{cache, get_or_head, AppState, Endpoint};

/// The API's own description: this document and the docs page.
pub fn endpoints() -> Vec<Endpoint> {
    use crate::accounts::tiers::Group::*;
    vec![
        Endpoint {
            path: "/openapi.json",
            route: || get_or_head().to(openapi_json),
            ops: &[Op {
                method: "GET",
                path: "/v1/openapi.json",
                summary: "This document",
                group: Meta,
                params: &[],
                body: None,
                success: 200,
                also: &[],
                response: None,
            }],
        },
        Endpoint {
            path: "/docs",
            route: || get_or_head().to(docs_page),
            ops: &[Op {
                method: "GET",
                path: "/v1/docs",
                summary: "The API documentation page: endpoints, tiers, versioning, error codes",
                group: Meta,
                params: &[],
                body: None,
                success: 200,
                also: &[],
                response: None,
            }],
        },
    ]
}

pub struct Param {
    pub name: &'static str,
    /// `path` or `query`.
    pub location: &'static str,
    pub required: bool,
    /// JSON schema type: `string` or `integer`.
    pub kind: &'static str,
    pub description: &'static str,
    /// What values the server accepts, stated in the schema so generated clients and
    /// contract tests send valid ones.
    pub accepts: Accepts,
}

/// The values a parameter accepts.
#[derive(Clone, Copy)]
pub enum Accepts {
    Any,
    OneOf(&'static [&'static str]),
    Range(i64, i64),
    /// A regular expression and the most characters.
    Pattern(&'static str, usize),
    /// A calendar date, `YYYY-MM-DD` (JSON Schema `format: date`).
    Date,
    /// Between one and this many characters.
    Length(usize),
}

impl Param {
    pub const fn accepting(self, accepts: Accepts) -> Param {
        Param { accepts, ..self }
    }
}

/// A JSON request body: an example and the type it is read into ([`schema_of`]).
pub struct Body {
    pub example: &'static str,
    pub schema: fn(&mut Schemas) -> String,
}

pub struct Op {
    pub method: &'static str,
    /// OpenAPI path template.
    pub path: &'static str,
    pub summary: &'static str,
    pub group: Group,
    pub params: &'static [Param],
    /// The JSON request body, if any.
    pub body: Option<Body>,
    pub success: u16,
    /// The type the success body is serialised from ([`schema_of`]), when it has one:
    /// its schema is derived from the type, so the document cannot drift from the code.
    pub response: Option<fn(&mut Schemas) -> String>,
    /// Error statuses only this operation answers (e.g. 409, 422), beyond the common ones.
    pub also: &'static [u16],
}

/// Component schemas collected while the document is built.
pub type Schemas = Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>;

/// Registers `T` and the types it refers to; answers `T`'s component name.
pub fn schema_of<T: utoipa::ToSchema>(schemas: &mut Schemas) -> String {
    schemas.push((T::name().to_string(), T::schema()));
    T::schemas(schemas);
    T::name().to_string()
}

pub const fn q(name: &'static str, kind: &'static str, description: &'static str) -> Param {
    Param { name, location: "query", required: false, kind, description, accepts: Accepts::Any }
}

pub const fn path(name: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: "path",
        required: true,
        kind: "string",
        description,
        accepts: Accepts::Length(128),
    }
}

/// A calendar date parameter.
pub const fn date(name: &'static str, description: &'static str) -> Param {
    q(name, "string", description).accepting(Accepts::Date)
}

pub const LIMIT: Param = q("limit", "integer", "page size").accepting(Accepts::Range(1, 100));
pub const CURSOR: Param = q("cursor", "string", "next_cursor from the previous page")
    .accepting(Accepts::Pattern("^[A-Za-z0-9_-]+$", 512));

/// Stable error codes, their status and meaning (also rendered on the docs page).
pub const ERRORS: &[(&str, u16, &str)] = &[
    (
        "invalid_parameter",
        400,
        "A query parameter or id is malformed, out of range, unknown or repeated; `parameter` names it.",
    ),
    ("invalid_body", 400, "The JSON body is malformed, has unknown fields, or breaks a rule."),
    ("invalid_api_key", 401, "The key is malformed or unknown."),
    ("revoked_api_key", 401, "The key was revoked or rotated; use a current key."),
    ("unauthorized", 401, "An admin call without the server's admin token."),
    ("tier_not_allowed", 403, "Your tier cannot call this endpoint; the message names one that can."),
    ("not_found", 404, "No paper, author, customer or key with that id."),
    ("no_route", 404, "No such endpoint."),
    ("unknown_collection", 404, "No collection by that name (`GET /v1/collections` lists them); the message names the ones there are."),
    ("method_not_allowed", 405, "The path exists but not with this method; `Allow` lists the ones it answers."),
    (
        "too_young",
        422,
        "The data does not cover the forecast's as-of date yet (for the bundled data: an early forecast needs the paper's first six months); the message names the day the data covers to.",
    ),
    ("payload_too_large", 413, "The request body is over the size limit (64 KiB)."),
    ("uri_too_long", 414, "The request line is over 32 KiB; send long inputs in a POST body."),
    ("headers_too_large", 431, "The request headers are over 32 KiB."),
    ("body_timeout", 408, "The request body did not arrive in time (5 s by default); send it at once."),
    ("email_taken", 409, "A customer with that e-mail address already exists."),
    ("account_suspended", 403, "The account was suspended by an operator; its keys are refused until it is reactivated."),
    ("key_limit_reached", 409, "Your tier's number of active API keys is reached; revoke one first."),
    ("subscription_exists", 409, "The customer already has a subscription; change its plan instead of starting another."),
    ("plan_unchanged", 409, "The subscription is already on that plan (or already scheduled to change to it)."),
    ("transition_refused", 409, "The subscription's status does not allow this (e.g. resuming one paused for an unpaid invoice); the message says why."),
    ("invoice_not_open", 409, "Only an open invoice can be paid; this one is paid, void or refunded."),
    ("invoice_not_paid", 409, "Only a paid invoice can be refunded."),
    ("unknown_plan", 422, "There is no tier by that name in the tier table."),
    ("plan_not_self_serve", 422, "The tier is priced per contract; contact us to subscribe to it."),
    ("invalid_signature", 400, "A payment webhook's `Stripe-Signature` is missing, malformed, stale (over 300 s) or matches no configured secret."),
    ("webhooks_disabled", 503, "No payment webhook secret is configured on this server."),
    (
        "too_many_in_flight",
        429,
        "You already have the most requests in flight one caller may (32 by default); retry when one finishes.",
    ),
    ("rate_limited", 429, "Over your tier's requests per minute; wait `Retry-After` seconds."),
    ("quota_exceeded", 429, "Over your tier's daily quota; it resets at 00:00 UTC (`Retry-After`)."),
    ("no_model", 503, "No forecast model is loaded for that mode."),
    ("not_ready", 503, "The server is still loading its data."),
    ("warming_up", 503, "The forecast models are warming up after a start (seconds to minutes on large data); retry after `Retry-After`."),
    ("overloaded", 503, "The server is at capacity; retry after `Retry-After` seconds."),
    ("timeout", 503, "The request took too long; retry."),
    ("busy", 503, "A part of the server (e.g. the model engine warming up after a large import) did not answer in time; retry after `Retry-After` seconds."),
    ("unavailable", 503, "A part of the server is not running; retry after `Retry-After` seconds."),
    ("storage_failed", 500, "The server could not write what it keeps (disk full, store failure); the message says why. Nothing you sent was lost."),
    ("backup_failed", 500, "An operator's backup failed on the server's side (e.g. a full disk); no partial file is left."),
    ("cannot_train", 422, "An operator's training or evaluation cannot run on this data (too little of it for the task, a degenerate model, a model of another collection); the message says what is missing."),
    ("internal", 500, "A fault on our side; it is logged. Nothing you sent was lost."),
];

/// Operations whose success body is JSON Lines, streamed (`application/x-ndjson`).
const STREAMED: &[&str] = &["/v1/forecasts/bulk"];

fn operation(op: &Op, schemas: &mut Schemas) -> Value {
    let params: Vec<Value> = op
        .params
        .iter()
        .map(|p| {
            let mut schema = json!({ "type": p.kind });
            match p.accepts {
                Accepts::Any => {}
                Accepts::OneOf(values) => schema["enum"] = json!(values),
                Accepts::Range(min, max) => {
                    schema["minimum"] = json!(min);
                    schema["maximum"] = json!(max);
                }
                Accepts::Pattern(re, max) => {
                    schema["pattern"] = json!(re);
                    schema["maxLength"] = json!(max);
                }
                Accepts::Date => schema["format"] = json!("date"),
                Accepts::Length(max) => {
                    schema["minLength"] = json!(1);
                    schema["maxLength"] = json!(max);
                }
            }
            let mut v = json!({
                "name": p.name, "in": p.location, "required": p.required,
                "description": p.description, "schema": schema,
            });
            // Real values of the bundled data, so generated calls also reach real records.
            let example = match (p.location, p.name) {
                ("path", "id") => Some("hep-th/9711200"),
                ("path", "key") => Some("witten_e"),
                ("query", "q") => Some("black hole entropy"),
                ("query", "mode") => Some("at_publication"),
                _ => None,
            };
            if let Some(e) = example {
                v["example"] = json!(e);
            }
            v
        })
        .collect();
    let error = json!({ "$ref": "#/components/responses/Error" });
    let mut responses = Map::new();
    // The docs page is the one HTML answer under /v1.
    let media = if op.path.ends_with("/docs") {
        "text/html"
    } else if STREAMED.contains(&op.path) {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    let content = match op.response {
        Some(register) => {
            let name = register(schemas);
            json!({ media: { "schema": { "$ref": format!("#/components/schemas/{name}") } } })
        }
        None => json!({ media: {} }),
    };
    responses.insert(op.success.to_string(), json!({ "description": "success", "content": content }));
    // Every status the route can answer with, so a client (and the contract test)
    // knows each one: the common ones, then those only a body or an operation has.
    let mut codes = vec![400, 401, 403, 404, 405, 414, 429, 431, 500, 503];
    if op.body.is_some() {
        codes.extend([408, 413]);
    }
    codes.extend(op.also);
    codes.sort_unstable();
    codes.dedup();
    for code in codes {
        responses.insert(code.to_string(), error.clone());
    }
    let mut o = json!({
        "summary": op.summary,
        "tags": [op.group.label()],
        "parameters": params,
        "responses": responses,
    });
    if let Some(body) = &op.body {
        let name = (body.schema)(schemas);
        let example: Value = serde_json::from_str(body.example).unwrap_or(Value::Null);
        o["requestBody"] = json!({
            "required": true,
            "content": { "application/json": {
                "schema": { "$ref": format!("#/components/schemas/{name}") },
                "example": example,
            } },
        });
    }
    o
}

pub fn document(endpoints: &[Endpoint]) -> Value {
    let mut paths = Map::new();
    let mut schemas = Schemas::new();
    for op in endpoints.iter().flat_map(|e| e.ops.iter()) {
        let entry = paths.entry(op.path.to_string()).or_insert_with(|| json!({}));
        entry[op.method.to_lowercase()] = operation(op, &mut schemas);
    }
    let schemas: Map<String, Value> = schemas
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or(Value::Null)))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "citecast API",
            "version": "1",
            "description": "Papers, citations, search and forecasts of which papers become highly cited. \
                Authenticate with `Authorization: Bearer cc_live_...`; every response carries \
                RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset.",
        },
        "servers": [{ "url": "/" }],
        "components": {
            "securitySchemes": { "apiKey": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas,
            "responses": { "Error": {
                "description": "an error: {\"error\":{\"code\",\"message\",\"docs\"}}",
                "content": { "application/json": { "schema": {
                    "type": "object",
                    "properties": { "error": { "type": "object", "required": ["code", "message", "docs"],
                        "properties": {
                            "code": { "type": "string", "enum": ERRORS.iter().map(|e| e.0).collect::<Vec<_>>() },
                            "message": { "type": "string" },
                            "docs": { "type": "string" },
                        } } },
                } } },
            } },
        },
        "security": [{ "apiKey": [] }, {}],
        "paths": paths,
    })
}

pub async fn openapi_json(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Ok(cache::json_value(&req, &document(&crate::web::v1_endpoints()), 3600))
}

struct DocOp {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    params: Vec<String>,
}

#[derive(Template)]
#[template(path = "api_docs.html")]
struct DocsPage<'a> {
    ops: Vec<DocOp>,
    errors: &'static [(&'static str, u16, &'static str)],
    tiers: &'a [crate::accounts::tiers::Tier],
    anonymous: &'a crate::accounts::tiers::Tier,
}

pub async fn docs_page(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let ops = crate::web::v1_endpoints()
        .iter()
        .flat_map(|e| e.ops.iter())
        .map(|o| DocOp {
            method: o.method,
            path: o.path,
            summary: o.summary,
            params: o
                .params
                .iter()
                .map(|p| format!("{} ({}): {}", p.name, p.location, p.description))
                .collect(),
        })
        .collect();
    let page = DocsPage { ops, errors: ERRORS, tiers: &state.tiers.tiers, anonymous: &state.tiers.anonymous };
    let html = page.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html))
}
