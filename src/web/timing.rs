//! The request-metrics middleware: times every request and counts it in
//! [`crate::ops::metrics::Metrics`].

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error};

use crate::ops::metrics::method_label;

/// Outermost middleware: times every request and counts it by route pattern (bounded
/// label values), method and final status, including errors raised by inner middleware.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<super::AppState>>().cloned();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let method = method_label(req.method());
    let res = next.call(req).await;
    if let Some(state) = metrics {
        let status = match &res {
            Ok(r) => r.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        state.metrics.observe(&route, method, status, started.elapsed().as_secs_f64());
    }
    res
}
