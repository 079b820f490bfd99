//! HTTP caching: strong ETags over the exact body, `Cache-Control`, and 304 answers to
//! `If-None-Match`, so clients and CDNs can serve repeats without a transfer.

use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// A strong validator: the first 128 bits of the body's SHA-256, quoted.
pub fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut s = String::with_capacity(34);
    s.push('"');
    for b in &digest[..16] {
        s.push_str(&format!("{b:02x}"));
    }
    s.push('"');
    s
}

fn matches(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').map(str::trim).any(|candidate| candidate == "*" || candidate == etag))
}

/// A JSON response with validators; `304 Not Modified` when the client has it already.
pub fn json(req: &HttpRequest, body: Bytes, etag: &str, max_age_secs: u32) -> HttpResponse {
    let control = format!("public, max-age={max_age_secs}");
    if matches(req, etag) {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, control))
            .finish();
    }
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, control))
        .body(body)
}

/// Serialises `value` and answers it with validators.
pub fn json_value(req: &HttpRequest, value: &serde_json::Value, max_age_secs: u32) -> HttpResponse {
    let body = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
    let etag = etag_of(&body);
    json(req, body, &etag, max_age_secs)
}
