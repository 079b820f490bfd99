//! Customers, their API keys, tiers and limits. Records and keys are here; their storage
//! is [`store`], the HTTP routes [`routes`], the churn signals [`churn`].
//!
//! Keys look like `cc_live_<32 base62 chars>`: ~190 random bits, shown once at creation
//! and stored only as a SHA-256 hash (a slow password hash buys nothing at that entropy
//! and would cost every request). The first 12 characters are kept as a display prefix
//! so keys can be told apart in logs and listings.

pub mod churn;
mod error;
pub mod job;
pub mod limits;
pub mod page;
pub mod password;
pub mod routes;
pub mod signin;
pub mod store;
pub mod tiers;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use error::AccountError;
pub use store::{AccountStore, Accounts, Logins};

pub const KEY_PREFIX: &str = "cc_live_";
pub(crate) const KEY_RANDOM_CHARS: usize = 32;
pub(crate) const DISPLAY_PREFIX_CHARS: usize = 12;

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
