//! Web sessions for people signed in on the pages (customers and the operator): the
//! state lives in sled (`web_sessions`, keyed by the SHA-256 of the cookie's session key,
//! so a copy of the store holds no usable cookie) behind actix-session's `SessionStore`;
//! the cookie is HttpOnly, SameSite=Lax, Secure when the site is served over https,
//! signed and encrypted with the site secret, and expires after two weeks.
//!
//! Also here, because every form needs them: the CSRF check of a posted form (token
//! bound to the session plus the same-origin check, [`super::csrf`]) and the security
//! headers of HTML pages.

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::{time::Duration as CookieDuration, Key, SameSite};
use actix_web::HttpRequest;
use serde::{Deserialize, Serialize};

use super::Site;

/// How long a session lives without being used.
pub const SESSION_TTL_DAYS: i64 = 14;

/// The tree of session states.
pub const TREE: &str = "web_sessions";

#[derive(Serialize, Deserialize)]
struct Stored {
    state: HashMap<String, String>,
    expires: i64,
}

/// Session states in the store's `web_sessions` tree.
#[derive(Clone)]
pub struct SledSessions {
    tree: sled::Tree,
}

fn now() -> i64 {
    citecast_actors::dates::now_secs()
}

fn storage_key(key: &SessionKey) -> Vec<u8> {
    crate::accounts::hash_secret(key.as_ref())
}

fn fresh_key() -> Result<SessionKey, anyhow::Error> {
    SessionKey::try_from(crate::accounts::random_base62(64)).map_err(anyhow::Error::from)
}

impl SledSessions {
    pub fn open(db: &sled::Db) -> Result<SledSessions, sled::Error> {
        Ok(SledSessions { tree: db.open_tree(TREE)? })
    }

    fn put(
        &self,
        key: &SessionKey,
        state: HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> anyhow::Result<()> {
        let stored = Stored { state, expires: now() + ttl.whole_seconds() };
        self.tree.insert(storage_key(key), serde_json::to_vec(&stored)?)?;
        Ok(())
    }

    /// Drops expired sessions; answers how many.
    pub fn sweep(&self) -> Result<usize, sled::Error> {
        let now = now();
        let mut n = 0;
        for item in self.tree.iter() {
            let (k, v) = item?;
            let expired = serde_json::from_slice::<Stored>(&v).map(|s| s.expires <= now).unwrap_or(true);
            if expired {
                self.tree.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Ends every session of `customer_id` except none (after a password reset).
    pub fn end_sessions_of(&self, customer_id: &str) -> Result<usize, sled::Error> {
        let mut n = 0;
        let wanted = serde_json::to_string(customer_id).unwrap_or_default();
        for item in self.tree.iter() {
            let (k, v) = item?;
            if let Ok(s) = serde_json::from_slice::<Stored>(&v) {
                if s.state.get(CUSTOMER) == Some(&wanted) {
                    self.tree.remove(k)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

impl SessionStore for SledSessions {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let Some(bytes) = self.tree.get(storage_key(key)).map_err(|e| LoadError::Other(e.into()))? else {
            return Ok(None);
        };
        let stored: Stored =
            serde_json::from_slice(&bytes).map_err(|e| LoadError::Deserialization(e.into()))?;
        if stored.expires <= now() {
            let _ = self.tree.remove(storage_key(key));
            return Ok(None);
        }
        Ok(Some(stored.state))
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        let key = fresh_key().map_err(SaveError::Other)?;
        self.put(&key, state, ttl).map_err(SaveError::Other)?;
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        self.put(&key, state, ttl).map_err(UpdateError::Other)?;
        Ok(key)
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &CookieDuration) -> anyhow::Result<()> {
        if let Some(bytes) = self.tree.get(storage_key(key))? {
            let mut stored: Stored = serde_json::from_slice(&bytes)?;
            stored.expires = now() + ttl.whole_seconds();
            self.tree.insert(storage_key(key), serde_json::to_vec(&stored)?)?;
        }
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        self.tree.remove(storage_key(key))?;
        Ok(())
    }
}

/// The session middleware for the pages.
pub fn middleware(site: &Site, store: SledSessions) -> SessionMiddleware<SledSessions> {
    use actix_session::config::{PersistentSession, TtlExtensionPolicy};
    SessionMiddleware::builder(store, Key::derive_from(&site.secret))
        .cookie_name("citecast_session".into())
        .cookie_http_only(true)
        .cookie_secure(site.secure_cookies)
        .cookie_same_site(SameSite::Lax)
        .session_lifecycle(
            PersistentSession::default()
                .session_ttl(CookieDuration::days(SESSION_TTL_DAYS))
                .session_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
        )
        .build()
}

/// Session entry: the signed-in customer.
pub const CUSTOMER: &str = "customer_id";
/// Session entry: unix seconds of sign-in (a later password change ends the session).
pub const SIGNED_IN_AT: &str = "signed_in_at";
/// Session entry: the operator signed in with the admin token.
pub const OPERATOR: &str = "operator";
/// Session entry: the random id CSRF tokens are bound to.
const CSRF_ID: &str = "csrf_id";

/// A CSRF token for a form on a page shown to this session (creating the session's
/// CSRF id on first use).
pub fn csrf_token(session: &Session, site: &Site) -> String {
    let id = match session.get::<String>(CSRF_ID).ok().flatten() {
        Some(id) => id,
        None => {
            let id = crate::accounts::random_base62(24);
            let _ = session.insert(CSRF_ID, &id);
            id
        }
    };
    super::csrf::token(&site.secret, &id).unwrap_or_default()
}

/// Why a posted form was refused before its fields were looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormRefusal {
    /// The request did not come from one of our pages (Origin/Referer).
    CrossOrigin,
    /// The form's token is missing, stale or not this session's.
    BadToken,
}

impl FormRefusal {
    pub fn message(self) -> &'static str {
        match self {
            FormRefusal::CrossOrigin => {
                "This form was sent from another site, so it was not accepted. Open the page on this site and send it again."
            }
            FormRefusal::BadToken => {
                "This form has expired or was opened in another session. Reload the page and send it again."
            }
        }
    }
}

/// Both checks of a posted form: same origin (the configured public URL or the host
/// the request was sent to) and the session's CSRF token.
pub fn check_form(req: &HttpRequest, session: &Session, site: &Site, token: &str) -> Result<(), FormRefusal> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let info = req.connection_info();
    let here = format!("{}://{}", info.scheme(), info.host());
    let (origin, referer) = (header("origin"), header("referer"));
    if !super::csrf::same_origin(origin, referer, &site.base_url)
        && !super::csrf::same_origin(origin, referer, &here)
    {
        return Err(FormRefusal::CrossOrigin);
    }
    let id = session.get::<String>(CSRF_ID).ok().flatten().ok_or(FormRefusal::BadToken)?;
    if super::csrf::verify(&site.secret, &id, token) {
        Ok(())
    } else {
        Err(FormRefusal::BadToken)
    }
}

/// Signs `customer_id` in: a fresh session key (an id planted before sign-in is
/// worthless afterwards) and a fresh CSRF id.
pub fn sign_in(session: &Session, customer_id: &str) {
    session.renew();
    session.remove(CSRF_ID);
    let _ = session.insert(CUSTOMER, customer_id);
    let _ = session.insert(SIGNED_IN_AT, now());
}

/// The customer signed in on this session, and when they signed in.
pub fn signed_in(session: &Session) -> Option<(String, i64)> {
    let id = session.get::<String>(CUSTOMER).ok().flatten()?;
    let at = session.get::<i64>(SIGNED_IN_AT).ok().flatten().unwrap_or(0);
    Some((id, at))
}

/// Adds the security headers every HTML page sends: no framing, no sniffing, no
/// referrer beyond our own site (links carry tokens), and a policy allowing only our
/// own resources (inline styles and SVG charts; no scripts at all).
pub async fn page_headers(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::http::header::{HeaderName, HeaderValue};
    let mut res = next.call(req).await?;
    let is_html = res
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        let h = res.headers_mut();
        for (name, value) in [
            (
                "content-security-policy",
                "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "same-origin"),
            ("x-frame-options", "DENY"),
        ] {
            h.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
    }
    Ok(res)
}
