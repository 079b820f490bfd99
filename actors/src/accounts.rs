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
    /// Stopped by an operator: its keys are refused (403 `account_suspended`) until it
    /// is reactivated. (Added last, so stored values keep their encoding.)
    Suspended,
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
    #[error("a customer with the e-mail address '{0}' already exists")]
    EmailTaken(String),
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
    /// lower-cased e-mail address -> customer id: one customer per address.
    customer_emails: sled::Tree,
    version: Version,
}

/// The form of an address the uniqueness check compares.
fn email_key(email: &str) -> Vec<u8> {
    email.trim().to_lowercase().into_bytes()
}

fn check_name(name: &str) -> Result<(), AccountError> {
    if name.is_empty() || name.len() > 200 {
        return Err(AccountError::Invalid("name must be 1 to 200 characters".into()));
    }
    Ok(())
}

fn check_email(email: &str) -> Result<(), AccountError> {
    if email.len() > 254 || !email.contains('@') || email.contains(char::is_whitespace) {
        return Err(AccountError::Invalid(format!("'{email}' is not an e-mail address")));
    }
    Ok(())
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
        let accounts = Accounts {
            customers: db.open_tree("customers")?,
            keys: db.open_tree("api_keys")?,
            key_hashes: db.open_tree("api_key_hashes")?,
            customer_keys: db.open_tree("customer_keys")?,
            customer_emails: db.open_tree("customer_emails")?,
            version: Version::default(),
        };
        accounts.reconcile_emails()?;
        Ok(accounts)
    }

    /// Brings the e-mail index in step with the customers: fills it for stores written
    /// before it existed (where two customers already share an address, the older
    /// record keeps it and a warning names both), and drops entries a crash left
    /// pointing at no customer.
    fn reconcile_emails(&self) -> Result<()> {
        for kv in self.customer_emails.iter() {
            let (email, id) = kv?;
            if self.customers.get(&id)?.is_none() {
                self.customer_emails.remove(email)?;
            }
        }
        let mut all: Vec<Customer> = Vec::new();
        for kv in self.customers.iter() {
            let (_, v) = kv?;
            all.push(codec::decode(&v)?);
        }
        all.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        for c in all {
            let key = email_key(&c.email);
            match self.customer_emails.get(&key)? {
                None => {
                    self.customer_emails.insert(key, c.id.as_bytes())?;
                }
                Some(owner) if owner.as_ref() != c.id.as_bytes() => tracing::warn!(
                    customer = %c.id,
                    holder = %String::from_utf8_lossy(&owner),
                    "two customers share an e-mail address (stored before addresses were unique)"
                ),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Reserves `email` for customer `id`; fails if another customer holds it.
    fn claim_email(&self, email: &str, id: &str) -> Result<(), AccountError> {
        let key = email_key(email);
        match self.customer_emails.compare_and_swap(&key, None::<&[u8]>, Some(id.as_bytes()))? {
            Ok(()) => Ok(()),
            Err(current) if current.current.as_deref() == Some(id.as_bytes()) => Ok(()),
            Err(_) => Err(AccountError::EmailTaken(email.trim().to_string())),
        }
    }

    /// Releases `email` if customer `id` holds it.
    fn release_email(&self, email: &str, id: &str) -> Result<(), AccountError> {
        let key = email_key(email);
        let _ = self.customer_emails.compare_and_swap(&key, Some(id.as_bytes()), None::<&[u8]>)?;
        Ok(())
    }

    fn put_customer(&self, c: &Customer) -> Result<(), AccountError> {
        self.customers.insert(c.id.as_bytes(), codec::encode(c)?)?;
        Ok(())
    }

    fn existing(&self, id: &str) -> Result<Customer, AccountError> {
        self.customer(id)?.ok_or_else(|| AccountError::NoCustomer(id.into()))
    }

    /// Changes a customer's name and/or e-mail address (still unique).
    pub fn edit_customer(
        &self,
        id: &str,
        name: Option<&str>,
        email: Option<&str>,
    ) -> Result<Customer, AccountError> {
        let mut c = self.existing(id)?;
        if let Some(name) = name.map(str::trim) {
            check_name(name)?;
            c.name = name.to_string();
        }
        let old_email = c.email.clone();
        if let Some(email) = email.map(str::trim) {
            check_email(email)?;
            self.claim_email(email, id)?;
            c.email = email.to_string();
        }
        c.updated = crate::dates::now_secs();
        self.put_customer(&c)?;
        if email_key(&old_email) != email_key(&c.email) {
            self.release_email(&old_email, id)?;
        }
        Ok(c)
    }

    /// Suspends (`true`) or reactivates (`false`) a customer. A suspended customer's keys
    /// are refused; nothing is deleted.
    pub fn set_suspended(&self, id: &str, suspended: bool) -> Result<Customer, AccountError> {
        let mut c = self.existing(id)?;
        let want = if suspended { CustomerStatus::Suspended } else { CustomerStatus::Active };
        if c.status == want {
            let what = if suspended { "suspended" } else { "active" };
            return Err(AccountError::Invalid(format!("customer '{id}' is already {what}")));
        }
        c.status = want;
        c.updated = crate::dates::now_secs();
        self.put_customer(&c)?;
        self.version.bump();
        Ok(c)
    }

    /// Deletes a customer and its keys (their secrets stop working at once). Returns the
    /// record as it was, for the audit log, which keeps it.
    pub fn delete_customer(&self, id: &str) -> Result<Customer, AccountError> {
        let c = self.existing(id)?;
        // Keys first, so no half-deleted customer can still authenticate.
        for key in self.keys_of(id)? {
            let ids: Vec<sled::IVec> = self
                .key_hashes
                .iter()
                .filter_map(|kv| kv.ok())
                .filter(|(_, v)| v.as_ref() == key.id.as_bytes())
                .map(|(h, _)| h)
                .collect();
            for h in ids {
                self.key_hashes.remove(h)?;
            }
            self.keys.remove(key.id.as_bytes())?;
            self.customer_keys.remove(owner_key(id, &key.id))?;
        }
        self.customers.remove(id.as_bytes())?;
        self.release_email(&c.email, id)?;
        self.customers.flush()?;
        self.version.bump();
        Ok(c)
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
        check_name(name)?;
        check_email(email)?;
        let customer = Customer {
            id: format!("cus_{}", random_base62(14)),
            name: name.to_string(),
            email: email.to_string(),
            tier: tier.to_string(),
            created: crate::dates::now_secs(),
            status: CustomerStatus::Active,
            updated: crate::dates::now_secs(),
        };
        // The address is reserved first (atomically), so two sign-ups with one address
        // cannot both succeed; a crash before the record is written leaves an entry that
        // the next open drops.
        self.claim_email(email, &customer.id)?;
        if let Err(e) = self.put_customer(&customer) {
            let _ = self.release_email(email, &customer.id);
            return Err(e);
        }
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
        let mut c = self.existing(id)?;
        c.tier = tier.to_string();
        c.updated = crate::dates::now_secs();
        self.put_customer(&c)?;
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

    #[test]
    fn one_customer_per_address_and_every_change_moves_updated() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let accounts = Accounts::open(&db).unwrap();
        let (a, key) = accounts.add_customer("Lab", "Lab@Example.org", "free").unwrap();
        let err = accounts.add_customer("Other", " lab@example.ORG ", "free").unwrap_err();
        assert!(matches!(err, AccountError::EmailTaken(_)), "{err}");
        let (b, _) = accounts.add_customer("Other", "other@example.org", "free").unwrap();
        assert!(matches!(
            accounts.edit_customer(&b.id, None, Some("LAB@example.org")),
            Err(AccountError::EmailTaken(_))
        ));

        // Every change moves `updated` (the clock has one-second steps: backdate first).
        let mut old = accounts.customer(&a.id).unwrap().unwrap();
        old.updated -= 100;
        accounts.put_customer(&old).unwrap();
        let t = accounts.set_tier(&a.id, "pro").unwrap();
        assert!(t.updated > old.updated && t.tier == "pro");
        let e = accounts.edit_customer(&a.id, Some("Lab 2"), Some("new@example.org")).unwrap();
        assert_eq!((e.name.as_str(), e.email.as_str()), ("Lab 2", "new@example.org"));
        // The old address is free again, the new one taken.
        accounts.add_customer("Third", "lab@example.org", "free").unwrap();
        assert!(accounts.add_customer("Fourth", "NEW@example.org", "free").is_err());

        // Suspension refuses nothing stored; authentication still finds the customer.
        let v = accounts.version().get();
        let s = accounts.set_suspended(&a.id, true).unwrap();
        assert_eq!(s.status, CustomerStatus::Suspended);
        assert!(accounts.version().get() > v, "key caches must notice");
        assert!(accounts.set_suspended(&a.id, true).is_err());
        assert_eq!(accounts.set_suspended(&a.id, false).unwrap().status, CustomerStatus::Active);

        // Deletion removes the keys with the customer and frees the address.
        accounts.delete_customer(&a.id).unwrap();
        assert!(accounts.customer(&a.id).unwrap().is_none());
        assert!(matches!(accounts.authenticate(&key.secret).unwrap(), Auth::Unknown));
        assert!(accounts.keys_of(&a.id).unwrap().is_empty());
        accounts.add_customer("Fifth", "new@example.org", "free").unwrap();
    }

    #[test]
    fn the_address_index_is_built_for_stores_written_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let accounts = Accounts::open(&db).unwrap();
        let (a, _) = accounts.add_customer("Lab", "lab@example.org", "free").unwrap();
        // As an older build left it: no index at all.
        db.drop_tree("customer_emails").unwrap();
        let accounts = Accounts::open(&db).unwrap();
        assert!(matches!(
            accounts.add_customer("Other", "LAB@example.org", "free"),
            Err(AccountError::EmailTaken(_))
        ));
        // An entry left by a crash before its customer was written is dropped.
        accounts.customer_emails.insert(email_key("ghost@example.org"), "cus_ghost").unwrap();
        let accounts = Accounts::open(&db).unwrap();
        accounts.add_customer("Ghost", "ghost@example.org", "free").unwrap();
        assert!(accounts.customer(&a.id).unwrap().is_some());
        assert!(matches!(accounts.issue_key("cus_missing", "k", None), Err(AccountError::NoCustomer(_))));
    }
}
