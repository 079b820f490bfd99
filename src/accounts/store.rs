//! Customers and their API keys in sled: the `customers`, `api_keys`, `api_key_hashes`,
//! `customer_keys` and `customer_emails` trees, opened from the engine's database, and
//! their migrations. The only code touching those trees; the rest of the product goes
//! through [`AccountStore`], so another backend can take their place.

use citecast_actors::codec;
use citecast_actors::dates;
use citecast_actors::migrate::{self, META_TREE};
use citecast_actors::store::StoreError;
use citecast_actors::Version;

use super::error::AccountError;
use super::{
    hash_secret, random_base62, ApiKey, Auth, Customer, CustomerStatus, CustomerV1, NewKey,
    DISPLAY_PREFIX_CHARS, KEY_PREFIX, KEY_RANDOM_CHARS,
};

type Result<T, E = AccountError> = std::result::Result<T, E>;

/// Where the accounts' schema version is kept in the engine's `meta` tree.
const SCHEMA_KEY: &[u8] = b"accounts_schema_version";

/// Brings the accounts' values to the codec's schema version, value by value (the
/// version byte says which still need it, so a run cut short resumes). Version 2 gave
/// customers `status` and `updated`; keys only move their version byte on.
fn migrate_trees(db: &sled::Db) -> Result<u64> {
    let meta = db.open_tree(META_TREE)?;
    if meta.get(SCHEMA_KEY)?.and_then(|v| v.first().copied()) == Some(codec::SCHEMA_VERSION) {
        return Ok(0);
    }
    let to_v2 = |bytes: &[u8]| -> std::result::Result<Vec<u8>, citecast_actors::store::StoreError> {
        let old: CustomerV1 = codec::decode_version(bytes, 1)?;
        Ok(codec::encode(&Customer::from(old))?)
    };
    let mut n = 0;
    for version in 1..codec::SCHEMA_VERSION {
        let convert: Option<migrate::Convert> = (version == 1).then_some(&to_v2);
        n += migrate::step(&db.open_tree("customers")?, version, convert)?;
        n += migrate::step(&db.open_tree("api_keys")?, version, None)?;
    }
    if n > 0 {
        tracing::info!(values = n, "accounts migrated");
    }
    meta.insert(SCHEMA_KEY, &[codec::SCHEMA_VERSION])?;
    meta.flush()?;
    Ok(n)
}

/// Replaces the stored churn signals (the `churn_signals` tree) with `signals`.
pub fn save_churn_signals(db: &sled::Db, signals: &[super::churn::ChurnSignal]) -> Result<(), StoreError> {
    let tree = db.open_tree("churn_signals")?;
    tree.clear()?;
    for s in signals {
        tree.insert(s.customer_id.as_bytes(), codec::encode(s)?)?;
    }
    Ok(())
}

/// The churn signals the last `churn` run stored, by customer id.
pub fn churn_signals(db: &sled::Db) -> Result<Vec<super::churn::ChurnSignal>, StoreError> {
    let mut out = Vec::new();
    for kv in db.open_tree("churn_signals")?.iter() {
        out.push(codec::decode(&kv?.1)?);
    }
    Ok(out)
}

/// Customers and keys as the product reads and writes them. [`Accounts`] keeps them in
/// sled; another backend (PostgreSQL for several nodes) implements the same calls.
/// The calls block (storage I/O): async code runs them on the blocking pool ([`call`]).
pub trait AccountStore: Send + Sync {
    fn add_customer(&self, name: &str, email: &str, tier: &str) -> Result<(Customer, NewKey)>;
    fn customer(&self, id: &str) -> Result<Option<Customer>>;
    fn customers(&self, after: Option<&str>, limit: usize) -> Result<Vec<Customer>>;
    fn set_tier(&self, id: &str, tier: &str) -> Result<Customer>;
    fn edit_customer(&self, id: &str, name: Option<&str>, email: Option<&str>) -> Result<Customer>;
    fn set_suspended(&self, id: &str, suspended: bool) -> Result<Customer>;
    fn delete_customer(&self, id: &str) -> Result<Customer>;
    fn issue_key(&self, customer_id: &str, name: &str, max_active: Option<usize>) -> Result<NewKey>;
    fn key(&self, id: &str) -> Result<Option<ApiKey>>;
    fn keys_of(&self, customer_id: &str) -> Result<Vec<ApiKey>>;
    fn revoke(&self, key_id: &str) -> Result<ApiKey>;
    fn rotate(&self, key_id: &str) -> Result<NewKey>;
    fn authenticate(&self, secret: &str) -> Result<Auth>;
    /// Bumped by revocations and tier changes: caches of authentications compare it.
    fn version(&self) -> Version;
}

/// Runs a store call on the blocking pool, off the async workers.
pub async fn call<T, F>(store: &std::sync::Arc<dyn AccountStore>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn AccountStore) -> Result<T> + Send + 'static,
{
    let store = store.clone();
    crate::engine::blocking(move || f(store.as_ref()), || AccountError::Unavailable).await
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

fn owner_key(owner: &str, id: &str) -> Vec<u8> {
    let mut k = owner.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

impl Accounts {
    /// Opens the trees in `db`, migrating values older builds wrote, and reconciles the
    /// address index.
    pub fn open(db: &sled::Db) -> Result<Accounts> {
        migrate_trees(db)?;
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
        c.updated = dates::now_secs();
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
        c.updated = dates::now_secs();
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
            created: dates::now_secs(),
            status: CustomerStatus::Active,
            updated: dates::now_secs(),
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
        c.updated = dates::now_secs();
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
            created: dates::now_secs(),
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
        key.revoked = Some(dates::now_secs());
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

impl AccountStore for Accounts {
    fn add_customer(&self, name: &str, email: &str, tier: &str) -> Result<(Customer, NewKey)> {
        Accounts::add_customer(self, name, email, tier)
    }
    fn customer(&self, id: &str) -> Result<Option<Customer>> {
        Accounts::customer(self, id)
    }
    fn customers(&self, after: Option<&str>, limit: usize) -> Result<Vec<Customer>> {
        Accounts::customers(self, after, limit)
    }
    fn set_tier(&self, id: &str, tier: &str) -> Result<Customer> {
        Accounts::set_tier(self, id, tier)
    }
    fn edit_customer(&self, id: &str, name: Option<&str>, email: Option<&str>) -> Result<Customer> {
        Accounts::edit_customer(self, id, name, email)
    }
    fn set_suspended(&self, id: &str, suspended: bool) -> Result<Customer> {
        Accounts::set_suspended(self, id, suspended)
    }
    fn delete_customer(&self, id: &str) -> Result<Customer> {
        Accounts::delete_customer(self, id)
    }
    fn issue_key(&self, customer_id: &str, name: &str, max_active: Option<usize>) -> Result<NewKey> {
        Accounts::issue_key(self, customer_id, name, max_active)
    }
    fn key(&self, id: &str) -> Result<Option<ApiKey>> {
        Accounts::key(self, id)
    }
    fn keys_of(&self, customer_id: &str) -> Result<Vec<ApiKey>> {
        Accounts::keys_of(self, customer_id)
    }
    fn revoke(&self, key_id: &str) -> Result<ApiKey> {
        Accounts::revoke(self, key_id)
    }
    fn rotate(&self, key_id: &str) -> Result<NewKey> {
        Accounts::rotate(self, key_id)
    }
    fn authenticate(&self, secret: &str) -> Result<Auth> {
        Accounts::authenticate(self, secret)
    }
    fn version(&self) -> Version {
        Accounts::version(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_customers_gain_their_new_fields() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let old = CustomerV1 {
            id: "cus_1".into(),
            name: "A".into(),
            email: "a@x.org".into(),
            tier: "pro".into(),
            created: 7,
        };
        // As a version-1 build wrote it: the same layout behind version byte 1.
        let mut bytes = codec::encode(&old).unwrap();
        bytes[0] = 1;
        db.open_tree("customers").unwrap().insert("cus_1", bytes).unwrap();
        assert_eq!(migrate_trees(&db).unwrap(), 1);
        let c: Customer =
            codec::decode(&db.open_tree("customers").unwrap().get("cus_1").unwrap().unwrap()).unwrap();
        assert_eq!((c.status, c.updated, c.tier.as_str()), (CustomerStatus::Active, 7, "pro"));
        assert_eq!(migrate_trees(&db).unwrap(), 0, "a second open has nothing to do");
        let accounts = Accounts::open(&db).unwrap();
        assert_eq!(accounts.customer("cus_1").unwrap().unwrap().email, "a@x.org");
    }

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

/// How a person signs in on the web: one login per customer, found by the customer's
/// e-mail address. Kept beside the customers (`web_logins`), with the single-use tokens
/// of confirmation and password-reset mails (`web_tokens`, keyed by the token's SHA-256,
/// so a copy of the store holds no usable link).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Login {
    pub customer_id: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Unix seconds the sign-up form was sent and the address confirmed.
    pub signed_up: i64,
    pub confirmed: i64,
    /// Unix seconds of the last password change: sessions signed in before it end.
    pub password_changed: i64,
    /// Unix seconds of the customer's first successful API call.
    pub first_call: Option<i64>,
}

/// What a mailed token allows, once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "purpose", rename_all = "snake_case")]
pub enum TokenGrant {
    /// Finishing a sign-up: the account is made when the address is confirmed.
    Confirm { name: String, email: String, password_hash: String, plan: Option<String>, signed_up: i64 },
    /// Choosing a new password.
    Reset { customer_id: String },
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct StoredToken {
    grant: TokenGrant,
    expires: i64,
}

#[derive(Clone)]
pub struct Logins {
    logins: sled::Tree,
    tokens: sled::Tree,
    customer_emails: sled::Tree,
}

fn token_key(token: &str) -> Vec<u8> {
    hash_secret(token)
}

impl Logins {
    pub fn open(db: &sled::Db) -> Result<Logins> {
        Ok(Logins {
            logins: db.open_tree("web_logins")?,
            tokens: db.open_tree("web_tokens")?,
            customer_emails: db.open_tree("customer_emails")?,
        })
    }

    pub fn login(&self, customer_id: &str) -> Result<Option<Login>> {
        match self.logins.get(customer_id)? {
            Some(v) => {
                Ok(Some(serde_json::from_slice(&v).map_err(|e| AccountError::Corrupt(e.to_string()))?))
            }
            None => Ok(None),
        }
    }

    pub fn put_login(&self, login: &Login) -> Result<()> {
        let bytes = serde_json::to_vec(login).map_err(|e| AccountError::Corrupt(e.to_string()))?;
        self.logins.insert(login.customer_id.as_bytes(), bytes)?;
        Ok(())
    }

    /// The customer holding `email` (compared as the uniqueness index compares it).
    pub fn customer_id_by_email(&self, email: &str) -> Result<Option<String>> {
        Ok(self.customer_emails.get(email_key(email))?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Records the first successful API call of a customer with a login; answers the
    /// login when this call was the first (so the caller can measure time to it).
    pub fn record_first_call(&self, customer_id: &str, at: i64) -> Result<Option<Login>> {
        let Some(mut login) = self.login(customer_id)? else { return Ok(None) };
        if login.first_call.is_some() {
            return Ok(None);
        }
        login.first_call = Some(at);
        self.put_login(&login)?;
        Ok(Some(login))
    }

    /// Stores a new single-use token for `grant`, valid for `ttl_secs`; answers the token.
    pub fn issue_token(&self, grant: TokenGrant, now: i64, ttl_secs: i64) -> Result<String> {
        let token = random_base62(40);
        let stored = StoredToken { grant, expires: now + ttl_secs };
        let bytes = serde_json::to_vec(&stored).map_err(|e| AccountError::Corrupt(e.to_string()))?;
        self.tokens.insert(token_key(&token), bytes)?;
        Ok(token)
    }

    /// What `token` grants, if it exists and has not expired, without using it up (for
    /// the page that asks to confirm).
    pub fn peek_token(&self, token: &str, now: i64) -> Result<Option<TokenGrant>> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        Ok(match self.tokens.get(token_key(token))? {
            Some(v) => {
                let t: StoredToken =
                    serde_json::from_slice(&v).map_err(|e| AccountError::Corrupt(e.to_string()))?;
                (t.expires > now).then_some(t.grant)
            }
            None => None,
        })
    }

    /// Uses `token` up: the first caller gets its grant, every later one `None` (sled's
    /// remove is atomic, so two racing requests cannot both use it).
    pub fn take_token(&self, token: &str, now: i64) -> Result<Option<TokenGrant>> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        Ok(match self.tokens.remove(token_key(token))? {
            Some(v) => {
                let t: StoredToken =
                    serde_json::from_slice(&v).map_err(|e| AccountError::Corrupt(e.to_string()))?;
                (t.expires > now).then_some(t.grant)
            }
            None => None,
        })
    }

    /// Drops expired tokens; answers how many.
    pub fn sweep_tokens(&self, now: i64) -> Result<usize> {
        let mut n = 0;
        for item in self.tokens.iter() {
            let (k, v) = item?;
            let expired = serde_json::from_slice::<StoredToken>(&v).map(|t| t.expires <= now).unwrap_or(true);
            if expired {
                self.tokens.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Customers with a web login and the unix seconds of sign-up and first call, for the
    /// onboarding figures.
    pub fn onboarding(&self) -> Result<Vec<(i64, Option<i64>)>> {
        let mut out = Vec::new();
        for item in self.logins.iter() {
            let (_, v) = item?;
            if let Ok(l) = serde_json::from_slice::<Login>(&v) {
                out.push((l.signed_up, l.first_call));
            }
        }
        Ok(out)
    }
}
