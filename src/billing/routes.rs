//! `POST /webhooks/payments`: a payment provider's events, in Stripe's shape and signed
//! as Stripe signs them (`Stripe-Signature`, see [`super::signature`]). Each event id is
//! applied once; a replay answers 200 with `"replayed": true` and changes nothing, so the
//! provider's retries are harmless.

use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;
use serde_json::json;

use super::signature::{self, DEFAULT_TOLERANCE_SECS};
use super::store::call;
use super::{Applied, PaymentEvent};
use crate::web::error::ApiError;
use crate::web::{AppState, SiteRoute};

/// The largest event body accepted.
pub const MAX_WEBHOOK_BYTES: usize = 64 * 1024;

pub fn site_routes() -> Vec<SiteRoute> {
    use crate::web::get_or_head;
    vec![
        SiteRoute::post("/webhooks/payments", || web::post().to(payments)),
        SiteRoute::get("/billing", || get_or_head().to(super::page::billing)),
        SiteRoute::get("/billing/invoices/{id}", || get_or_head().to(super::page::invoice)),
        SiteRoute::post("/billing/{action}", || web::post().to(super::page::act)),
    ]
}

/// Webhooks are off: no secret is configured (`--payment-webhook-secret`).
#[derive(Debug, thiserror::Error)]
#[error("payment webhooks are disabled on this server: no webhook secret is configured")]
struct WebhooksDisabled;

impl crate::error::Coded for WebhooksDisabled {
    fn code(&self) -> &'static str {
        "webhooks_disabled"
    }
    fn status(&self) -> u16 {
        503
    }
}

/// What an event is about, as far as billing reads it.
#[derive(Debug, PartialEq, Eq)]
pub struct ProviderEvent {
    pub id: String,
    /// `None`: a type billing does not act on.
    pub kind: Option<PaymentEvent>,
    /// Our invoice id: `metadata.invoice_id`, else the object's own id.
    pub invoice_id: Option<String>,
}

/// Reads a Stripe-like event: `{"id", "type", "data": {"object": {"id", "metadata": {"invoice_id"}}}}`.
pub fn parse_event(body: &[u8]) -> Result<ProviderEvent, ApiError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::InvalidBody(format!("not JSON: {e}")))?;
    let id = v["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::InvalidBody("the event has no 'id'".into()))?
        .to_string();
    let kind = match v["type"].as_str() {
        Some("invoice.payment_succeeded" | "invoice.paid") => Some(PaymentEvent::Succeeded),
        Some("invoice.payment_failed") => Some(PaymentEvent::Failed),
        Some(_) => None,
        None => return Err(ApiError::InvalidBody("the event has no 'type'".into())),
    };
    let object = &v["data"]["object"];
    let invoice_id = object["metadata"]["invoice_id"]
        .as_str()
        .or_else(|| object["id"].as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok(ProviderEvent { id, kind, invoice_id })
}

async fn read_body(mut payload: web::Payload) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidBody(e.to_string()))?;
        if body.len() + chunk.len() > MAX_WEBHOOK_BYTES {
            return Err(ApiError::PayloadTooLarge { limit: MAX_WEBHOOK_BYTES });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub async fn payments(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if state.site.webhook_secrets.is_empty() {
        return Err(WebhooksDisabled.into());
    }
    let body = read_body(payload).await?;
    let header = req.headers().get("Stripe-Signature").and_then(|h| h.to_str().ok());
    let secrets: Vec<&[u8]> = state.site.webhook_secrets.iter().map(Vec::as_slice).collect();
    let now = citecast_actors::dates::now_secs();
    signature::verify(header, &body, &secrets, now, DEFAULT_TOLERANCE_SECS)?;
    let event = parse_event(&body)?;
    let Some(kind) = event.kind else {
        return Ok(HttpResponse::Ok().json(json!({ "received": true, "ignored": true })));
    };
    let invoice_id = event.invoice_id.ok_or_else(|| {
        ApiError::InvalidBody("the event names no invoice (data.object.metadata.invoice_id)".into())
    })?;
    let event_id = event.id.clone();
    let applied = call(&state.billing, move |b| b.apply_event(&event_id, kind, &invoice_id, now)).await?;
    match applied {
        Applied::Replayed => Ok(HttpResponse::Ok().json(json!({ "received": true, "replayed": true }))),
        Applied::Done(change) => {
            let accounts = state.accounts.clone();
            let synced = change.clone();
            // The event is applied and recorded: a failure here must not make the provider
            // retry (its retry would be a replay); it is logged for an operator instead.
            if let Err(e) =
                crate::accounts::store::call(&accounts, move |a| super::sync_tier(a, &synced)).await
            {
                tracing::error!(customer = %change.subscription.customer_id, error = %e, "tier not synced after a payment event");
            }
            // Receipts and payment-failure mails go out before the provider is answered;
            // a mail that fails is logged, never a reason for the provider to retry.
            super::job::mail_notices(
                state.mailer.clone(),
                state.accounts.clone(),
                state.billing.clone(),
                &state.site.base_url,
                &change.notices,
            )
            .await;
            tracing::info!(
                event = %event.id,
                customer = %change.subscription.customer_id,
                status = ?change.subscription.status,
                "payment event applied"
            );
            Ok(HttpResponse::Ok().json(json!({
                "received": true,
                "replayed": false,
                "notices": change.notices,
            })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_their_invoice_by_metadata_or_object_id() {
        let e = parse_event(
            br#"{"id":"evt_1","type":"invoice.payment_succeeded","data":{"object":{"id":"in_9","metadata":{"invoice_id":"inv_000001"}}}}"#,
        )
        .unwrap();
        assert_eq!(e.kind, Some(PaymentEvent::Succeeded));
        assert_eq!(e.invoice_id.as_deref(), Some("inv_000001"));
        let e = parse_event(
            br#"{"id":"evt_2","type":"invoice.payment_failed","data":{"object":{"id":"inv_000002"}}}"#,
        )
        .unwrap();
        assert_eq!((e.kind, e.invoice_id.as_deref()), (Some(PaymentEvent::Failed), Some("inv_000002")));
        let e = parse_event(br#"{"id":"evt_3","type":"customer.created","data":{}}"#).unwrap();
        assert_eq!(e.kind, None);
        assert!(parse_event(b"nope").is_err());
        assert!(parse_event(br#"{"type":"invoice.paid"}"#).is_err());
    }
}
