//! The webhook trees: `webhook_endpoints` (id → endpoint), `webhook_deliveries`
//! (id → delivery, ids in creation order) and `webhook_pending` (ids of deliveries still
//! to send, so a pass never scans the history). Values are JSON.

use serde::{Deserialize, Serialize};

use super::{Announcement, EventKind, Format, WebhookError};

/// A registered receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub format: Format,
    /// What it is sent; every kind when registered without a list.
    pub events: Vec<EventKind>,
    /// Signs its deliveries; shown once, when the endpoint is registered.
    #[serde(default)]
    pub secret: String,
    pub created: i64,
}

impl Endpoint {
    /// Without its secret, for pages and audit entries.
    pub fn public(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("secret");
        }
        v
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Failed after the last retry.
    Dead,
}

/// One announcement on its way to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub endpoint_id: String,
    pub announcement: Announcement,
    pub created: i64,
    pub state: DeliveryState,
    pub attempts: u32,
    /// When the next attempt is due (pending deliveries).
    pub next_at: i64,
    pub last_attempt: Option<i64>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

#[derive(Clone)]
pub struct Webhooks {
    db: sled::Db,
    endpoints: sled::Tree,
    deliveries: sled::Tree,
    pending: sled::Tree,
    meta: sled::Tree,
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(bytes).map_err(|e| WebhookError::Corrupt(e.to_string()))
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, WebhookError> {
    serde_json::to_vec(v).map_err(|e| WebhookError::Corrupt(e.to_string()))
}

impl Webhooks {
    pub fn open(db: &sled::Db) -> Result<Webhooks, WebhookError> {
        Ok(Webhooks {
            db: db.clone(),
            endpoints: db.open_tree("webhook_endpoints")?,
            deliveries: db.open_tree("webhook_deliveries")?,
            pending: db.open_tree("webhook_pending")?,
            meta: db.open_tree("webhook_meta")?,
        })
    }

    /// The site address links in deliveries start with (recorded when an endpoint is
    /// registered through the server, which knows it).
    pub fn base_url(&self) -> Result<String, WebhookError> {
        Ok(self.meta.get("base_url")?.map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default())
    }

    pub fn set_base_url(&self, url: &str) -> Result<(), WebhookError> {
        self.meta.insert("base_url", url.as_bytes())?;
        Ok(())
    }

    fn next_id(&self, prefix: &str) -> Result<String, WebhookError> {
        // Zero-padded so ids sort in creation order.
        Ok(format!("{prefix}{:012}", self.db.generate_id()?))
    }

    pub fn add_endpoint(
        &self,
        url: &str,
        format: Format,
        events: Vec<EventKind>,
        now: i64,
    ) -> Result<Endpoint, WebhookError> {
        super::check_url(url)?;
        let events = if events.is_empty() { EventKind::ALL.to_vec() } else { events };
        let ep = Endpoint {
            id: self.next_id("wh_")?,
            url: url.to_string(),
            format,
            events,
            secret: format!("whsec_{}", crate::accounts::random_base62(32)),
            created: now,
        };
        self.endpoints.insert(ep.id.as_bytes(), encode(&ep)?)?;
        Ok(ep)
    }

    pub fn remove_endpoint(&self, id: &str) -> Result<Endpoint, WebhookError> {
        match self.endpoints.remove(id)? {
            Some(v) => decode(&v),
            None => Err(WebhookError::NotFound(format!("webhook endpoint '{id}'"))),
        }
    }

    pub fn endpoint(&self, id: &str) -> Result<Option<Endpoint>, WebhookError> {
        self.endpoints.get(id)?.map(|v| decode(&v)).transpose()
    }

    pub fn endpoints(&self) -> Result<Vec<Endpoint>, WebhookError> {
        self.endpoints.iter().map(|kv| decode(&kv?.1)).collect()
    }

    /// One pending delivery per subscribed endpoint; answers how many.
    pub fn enqueue(&self, a: &Announcement, now: i64) -> Result<usize, WebhookError> {
        let mut n = 0;
        for ep in self.endpoints()? {
            if !ep.events.contains(&a.kind()) {
                continue;
            }
            let d = Delivery {
                id: self.next_id("dl_")?,
                endpoint_id: ep.id.clone(),
                announcement: a.clone(),
                created: now,
                state: DeliveryState::Pending,
                attempts: 0,
                next_at: now,
                last_attempt: None,
                last_status: None,
                last_error: None,
            };
            self.put_delivery(&d)?;
            n += 1;
        }
        Ok(n)
    }

    /// Stores a delivery and keeps the pending list in step with its state.
    pub fn put_delivery(&self, d: &Delivery) -> Result<(), WebhookError> {
        // The record first: a crash between the two writes leaves a pending id whose
        // record says where it stands, and `due` skips anything not pending.
        self.deliveries.insert(d.id.as_bytes(), encode(d)?)?;
        if d.state == DeliveryState::Pending {
            self.pending.insert(d.id.as_bytes(), &[])?;
        } else {
            self.pending.remove(d.id.as_bytes())?;
        }
        Ok(())
    }

    pub fn delivery(&self, id: &str) -> Result<Option<Delivery>, WebhookError> {
        self.deliveries.get(id)?.map(|v| decode(&v)).transpose()
    }

    /// Pending deliveries due at `now`, oldest first.
    pub fn due(&self, now: i64) -> Result<Vec<Delivery>, WebhookError> {
        let mut out = Vec::new();
        for kv in self.pending.iter() {
            let (id, _) = kv?;
            match self.deliveries.get(&id)?.map(|v| decode::<Delivery>(&v)).transpose()? {
                Some(d) if d.state == DeliveryState::Pending => {
                    if d.next_at <= now {
                        out.push(d);
                    }
                }
                _ => {
                    self.pending.remove(&id)?;
                }
            }
        }
        Ok(out)
    }

    /// The latest `limit` deliveries, newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<Delivery>, WebhookError> {
        self.deliveries.iter().rev().take(limit).map(|kv| decode(&kv?.1)).collect()
    }

    /// Dead letters, newest first (at most `limit`).
    pub fn dead(&self, limit: usize) -> Result<Vec<Delivery>, WebhookError> {
        let mut out = Vec::new();
        for kv in self.deliveries.iter().rev() {
            let d: Delivery = decode(&kv?.1)?;
            if d.state == DeliveryState::Dead {
                out.push(d);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Sends a dead letter again from its first attempt.
    pub fn requeue(&self, id: &str, now: i64) -> Result<Delivery, WebhookError> {
        let mut d = self.delivery(id)?.ok_or_else(|| WebhookError::NotFound(format!("delivery '{id}'")))?;
        if d.state != DeliveryState::Dead {
            return Err(WebhookError::Conflict(format!("delivery '{id}' is not dead-lettered")));
        }
        d.state = DeliveryState::Pending;
        d.attempts = 0;
        d.next_at = now;
        self.put_delivery(&d)?;
        Ok(d)
    }

    /// Drops delivered records older than `before` (the dead ones stay for the operator).
    pub fn prune_delivered(&self, before: i64) -> Result<usize, WebhookError> {
        let mut n = 0;
        for kv in self.deliveries.iter() {
            let (k, v) = kv?;
            let d: Delivery = decode(&v)?;
            if d.state == DeliveryState::Delivered && d.created < before {
                self.deliveries.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Runs store work on the blocking pool.
pub async fn call<T, F>(f: F) -> Result<T, WebhookError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, WebhookError> + Send + 'static,
{
    crate::engine::blocking(f, || WebhookError::Unavailable).await
}
