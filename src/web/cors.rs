//! CORS for `/v1`, outermost in its middleware stack: a browser page from an allowed
//! origin may call the API with its key in a header. A preflight (`OPTIONS` with
//! `Access-Control-Request-Method`) is answered here, before authentication and rate
//! limits, so it costs no quota; every other response, errors included, carries the
//! headers the page needs to read it.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse};

use crate::web::AppState;

/// Request headers a page may send.
const ALLOW_HEADERS: &str = "authorization, x-api-key, content-type, if-none-match";
/// Response headers a page may read (beyond the simple ones).
const EXPOSE_HEADERS: &str =
    "ratelimit-limit, ratelimit-remaining, ratelimit-reset, x-daily-quota-remaining, \
                              retry-after, etag, deprecation, sunset, link, location";
const ALLOW_METHODS: &str = "GET, HEAD, POST, DELETE, OPTIONS";
/// How long a browser may cache a preflight answer.
const MAX_AGE_SECS: &str = "600";

/// The `Access-Control-Allow-Origin` value for `origin`, if it may call.
fn allowed(origins: &[String], origin: &str) -> Option<HeaderValue> {
    if origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin))
        .then(|| HeaderValue::from_str(origin).ok())
        .flatten()
}

fn decorate(h: &mut HeaderMap, allow: HeaderValue) {
    let specific = allow != "*";
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    if specific {
        // The answer depends on the asking origin: shared caches must keep them apart.
        h.append(header::VARY, HeaderValue::from_static("origin"));
    }
}

pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let origins = req.app_data::<web::Data<AppState>>().map(|s| s.cors_origins.clone()).unwrap_or_default();
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_string);
    let allow = origin.as_deref().and_then(|o| allowed(&origins, o));
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut res = HttpResponse::NoContent();
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        let mut res = res.finish();
        if let Some(allow) = allow {
            let h = res.headers_mut();
            decorate(h, allow);
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE_SECS));
        }
        return Ok(req.into_response(res));
    }
    match next.call(req).await {
        Ok(res) => {
            let mut res = res.map_into_boxed_body();
            if let Some(allow) = allow {
                decorate(res.headers_mut(), allow);
            }
            Ok(res)
        }
        // Refusals raised by the inner middleware (401, 429, 503) keep their response,
        // with the CORS headers added so the page can read why.
        Err(e) => match allow {
            None => Err(e),
            Some(allow) => {
                let mut res = e.error_response();
                decorate(res.headers_mut(), allow);
                Err(actix_web::error::InternalError::from_response(e.to_string(), res).into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_matched_exactly_or_by_the_wildcard() {
        let list = vec!["https://app.example.org".to_string()];
        assert_eq!(allowed(&list, "https://app.example.org").unwrap(), "https://app.example.org");
        assert!(allowed(&list, "https://evil.example.org").is_none());
        assert!(allowed(&[], "https://app.example.org").is_none());
        assert_eq!(allowed(&["*".to_string()], "https://any.example").unwrap(), "*");
    }
}
