//! Customers and their API keys, in sled (owned by the store actor).
//!
//! Keys look like `cc_live_<32 base62 chars>`: ~190 random bits, shown once at creation
//! and stored only as a SHA-256 hash (a slow password hash buys nothing at that entropy
//! and would cost every request). The first 12 characters are kept as a display prefix
//! so keys can be told apart in logs and listings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec;
use crate::store::{Result, StoreError};

pub const KEY_PREFIX: &str = "cc_live_";
const KEY_RANDOM_CHARS: usize = 32;
const DISPLAY_PREFIX_CHARS: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub email: String,
    pub tier: String,
    /// Unix seconds.
    pub created: i64,
    /// Added in schema version 2 (billing: pause and cancel keep the record).
    pub status: CustomerStatus,
    /// Unix seconds of the last change (schema version 2; `created` for migrated records).
    pub updated: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerStatus {
    Active,
    Paused,
    Cancelled,
}

/// A customer as schema version 1 stored it, for the migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerV1 {
    pub id: String,
    pub name: String,
    pub email: String,
    pub tier: String,
    pub created: i64,
}

impl From<CustomerV1> for Customer {
    fn from(c: CustomerV1) -> Customer {
        Customer {
            id: c.id,
            name: c.name,
            email: c.email,
            tier: c.tier,
            created: c.created,
            status: CustomerStatus::Active,
            updated: c.created,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub customer_id: String,
    pub name: String,
    /// First characters of the secret, e.g. `cc_live_Ab3x`.
    pub prefix: String,
    pub created: i64,
    pub revoked: Option<i64>,
}

/// A key just issued: the only time its secret exists outside the caller.
#[derive(Debug, Clone, Serialize)]
pub struct NewKey {
    pub key: ApiKey,
    pub secret: String,
}

/// The outcome of presenting a secret.
#[derive(Debug, Clone)]
pub enum Auth {
    Valid { customer: Customer, key: ApiKey },
    Revoked { key: ApiKey },
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("customer '{0}' not found")]
    NoCustomer(String),
    #[error("API key '{0}' not found")]
    NoKey(String),
    #[error("API key '{0}' is already revoked")]
    AlreadyRevoked(String),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "this customer already holds {limit} active API keys, the most its tier allows; revoke one first"
    )]
    TooManyKeys { limit: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sled::Error> for AccountError {
    fn from(e: sled::Error) -> Self {
        AccountError::Store(e.into())
    }
}

impl From<codec::CodecError> for AccountError {
    fn from(e: codec::CodecError) -> Self {
        AccountError::Store(e.into())
    }
}

/// A counter others may read but only the owner bumps; caches compare it to know
/// when their entries went stale.
#[derive(Clone, Default)]
pub struct Version(Arc<AtomicU64>);

impl Version {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

#[derive(Clone)]
pub struct Accounts {
    customers: sled::Tree,
    keys: sled::Tree,
    /// sha256(secret) -> key id.
    key_hashes: sled::Tree,
    /// customer id · 0 · key id -> ().
    customer_keys: sled::Tree,
    version: Version,
}

/// Random characters from `[0-9A-Za-z]`, by rejection sampling the OS's random bytes
/// so every character is equally likely.
pub fn random_base62(n: usize) -> String {
    use std::io::Read;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(n);
    let mut urandom = std::fs::File::open("/dev/urandom").expect("the OS random source /dev/urandom");
    let mut buf = [0u8; 64];
    while out.len() < n {
        urandom.read_exact(&mut buf).expect("reading /dev/urandom");
        for b in buf {
            if b < 248 && out.len() < n {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    out
}

pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn owner_key(owner: &str, id: &str) -> Vec<u8> {
    let mut k = owner.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

impl Accounts {
    pub fn open(db: &sled::Db) -> Result<Accounts> {
        Ok(Accounts {
            customers: db.open_tree("customers")?,
            keys: db.open_tree("api_keys")?,
            key_hashes: db.open_tree("api_key_hashes")?,
            customer_keys: db.open_tree("customer_keys")?,
            version: Version::default(),
        })
    }

    /// Bumped whenever a key is revoked or a customer's tier changes.
    pub fn version(&self) -> Version {
        self.version.clone()
    }

    pub fn add_customer(
        &self,
        name: &str,
        email: &str,
        tier: &str,
    ) -> Result<(Customer, NewKey), AccountError> {
        let name = name.trim();
        let email = email.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(AccountError::Invalid("name must be 1 to 200 characters".into()));
        }
        if email.len() > 254 || !email.contains('@') || email.contains(char::is_whitespace) {
            return Err(AccountError::Invalid(format!("'{email}' is not an e-mail address")));
        }
        let customer = Customer {
            id: format!("cus_{}", random_base62(14)),
            name: name.to_string(),
            email: email.to_string(),
            tier: tier.to_string(),
            created: crate::dates::now_secs(),
            status: CustomerStatus::Active,
            updated: crate::dates::now_secs(),
        };
        self.customers.insert(customer.id.as_bytes(), codec::encode(&customer)?)?;
        let key = self.issue_key(&customer.id, "default", None)?;
        Ok((customer, key))
    }

    pub fn customer(&self, id: &str) -> Result<Option<Customer>, AccountError> {
        Ok(match self.customers.get(id)? {
            Some(v) => Some(codec::decode(&v)?),
            None => None,
        })
    }

    /// Customers in id order after `after`.
    pub fn customers(&self, after: Option<&str>, limit: usize) -> Result<Vec<Customer>, AccountError> {
        let start = after.map(|a| owner_key(a, "")).unwrap_or_default();
        let mut out = Vec::new();
        for kv in self.customers.range(start..) {
            let (k, v) = kv?;
            if Some(k.as_ref()) == after.map(str::as_bytes) {
                continue;
            }
            out.push(codec::decode(&v)?);
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    pub fn set_tier(&self, id: &str, tier: &str) -> Result<Customer, AccountError> {
        let mut c = self.customer(id)?.ok_or_else(|| AccountError::NoCustomer(id.into()))?;
        c.tier = tier.to_string();
        self.customers.insert(c.id.as_bytes(), codec::encode(&c)?)?;
        self.version.bump();
        Ok(c)
    }

    /// Issues a new key; `max_active` caps the customer's unrevoked keys (the tier's
    /// `max_keys`), `None` for no cap.
    pub fn issue_key(
        &self,
        customer_id: &str,
        name: &str,
        max_active: Option<usize>,
    ) -> Result<NewKey, AccountError> {
        if self.customer(customer_id)?.is_none() {
            return Err(AccountError::NoCustomer(customer_id.into()));
        }
        if let Some(limit) = max_active {
            let active = self.keys_of(customer_id)?.iter().filter(|k| k.revoked.is_none()).count();
            if active >= limit {
                return Err(AccountError::TooManyKeys { limit });
            }
        }
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(AccountError::Invalid("key name must be 1 to 100 characters".into()));
        }
        let secret = format!("{KEY_PREFIX}{}", random_base62(KEY_RANDOM_CHARS));
        let hash = hash_secret(&secret);
        let key = ApiKey {
            id: format!("key_{}", random_base62(14)),
            customer_id: customer_id.to_string(),
            name: name.to_string(),
            prefix: secret[..DISPLAY_PREFIX_CHARS].to_string(),
            created: crate::dates::now_secs(),
            revoked: None,
        };
        // The hash index is written last: a key is usable only once fully stored.
        self.keys.insert(key.id.as_bytes(), codec::encode(&key)?)?;
        self.customer_keys.insert(owner_key(customer_id, &key.id), &[])?;
        self.key_hashes.insert(hash, key.id.as_bytes())?;
        Ok(NewKey { key, secret })
    }

    pub fn key(&self, id: &str) -> Result<Option<ApiKey>, AccountError> {
        Ok(match self.keys.get(id)? {
            Some(v) => Some(codec::decode(&v)?),
            None => None,
        })
    }

    pub fn keys_of(&self, customer_id: &str) -> Result<Vec<ApiKey>, AccountError> {
        let prefix = owner_key(customer_id, "");
        let mut out = Vec::new();
        for kv in self.customer_keys.scan_prefix(&prefix) {
            let (k, _) = kv?;
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Some(key) = self.key(&id)? {
                out.push(key);
            }
        }
        out.sort_by_key(|k| k.created);
        Ok(out)
    }

    pub fn revoke(&self, key_id: &str) -> Result<ApiKey, AccountError> {
        let mut key = self.key(key_id)?.ok_or_else(|| AccountError::NoKey(key_id.into()))?;
        if key.revoked.is_some() {
            return Err(AccountError::AlreadyRevoked(key_id.into()));
        }
        key.revoked = Some(crate::dates::now_secs());
        self.keys.insert(key.id.as_bytes(), codec::encode(&key)?)?;
        self.keys.flush()?;
        self.version.bump();
        Ok(key)
    }

    /// Issues a replacement with the same name and revokes the old key.
    pub fn rotate(&self, key_id: &str) -> Result<NewKey, AccountError> {
        let old = self.key(key_id)?.ok_or_else(|| AccountError::NoKey(key_id.into()))?;
        if old.revoked.is_some() {
            return Err(AccountError::AlreadyRevoked(key_id.into()));
        }
        // A replacement, not an extra key: the old one is revoked right after.
        let new = self.issue_key(&old.customer_id, &old.name, None)?;
        self.revoke(key_id)?;
        Ok(new)
    }

    pub fn authenticate(&self, secret: &str) -> Result<Auth, AccountError> {
        if !secret.starts_with(KEY_PREFIX) {
            return Ok(Auth::Unknown);
        }
        let Some(id) = self.key_hashes.get(hash_secret(secret))? else { return Ok(Auth::Unknown) };
        let Some(key) = self.key(&String::from_utf8_lossy(&id))? else { return Ok(Auth::Unknown) };
        if key.revoked.is_some() {
            return Ok(Auth::Revoked { key });
        }
        match self.customer(&key.customer_id)? {
            Some(customer) => Ok(Auth::Valid { customer, key }),
            None => Ok(Auth::Unknown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_issued_hashed_revoked_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let accounts = Accounts::open(&db).unwrap();
        let (customer, first) = accounts.add_customer("Lab", "lab@example.org", "free").unwrap();
        assert!(first.secret.starts_with("cc_live_") && first.secret.len() == 8 + 32);
        assert_eq!(first.key.prefix, &first.secret[..12]);
        assert!(
            !serde_json::to_string(&first.key).unwrap().contains(&first.secret[12..]),
            "no secret in records"
        );
        assert!(matches!(accounts.authenticate(&first.secret).unwrap(), Auth::Valid { .. }));
        assert!(matches!(accounts.authenticate("cc_live_nope").unwrap(), Auth::Unknown));
        assert!(matches!(accounts.authenticate("garbage").unwrap(), Auth::Unknown));

        let v = accounts.version().get();
        let second = accounts.rotate(&first.key.id).unwrap();
        assert!(accounts.version().get() > v);
        assert!(matches!(accounts.authenticate(&first.secret).unwrap(), Auth::Revoked { .. }));
        assert!(matches!(accounts.authenticate(&second.secret).unwrap(), Auth::Valid { .. }));
        assert_eq!(accounts.keys_of(&customer.id).unwrap().len(), 2);
        assert!(matches!(accounts.revoke(&first.key.id), Err(AccountError::AlreadyRevoked(_))));
        assert!(accounts.add_customer("x", "not-an-email", "free").is_err());
        assert!(matches!(accounts.issue_key("cus_missing", "k", None), Err(AccountError::NoCustomer(_))));
    }
}
