//! The referral trees: codes (both ways), attributions (and their index per referrer),
//! commissions, the commission ledger, partners and the ledger's counter. The only place
//! that touches them. Values are JSON, readable in a dump and tolerant of added fields.
//!
//! A commission and its ledger entry are written in one transaction over the
//! commission, ledger and counter trees, and the transaction decides "already written"
//! from the commission record itself, so a notice seen twice (a replayed billing change,
//! the page-time reconciliation racing the hook) writes once.

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use super::{Attribution, Commission, CommissionStatus, EntryKind, LedgerEntry, Partner, ReferralError};

type Result<T, E = ReferralError> = std::result::Result<T, E>;

/// Referral records over the store's `referral_*` trees.
#[derive(Clone)]
pub struct Referrals {
    /// code → customer id (JSON string).
    codes: sled::Tree,
    /// customer id → code (JSON string).
    code_of: sled::Tree,
    /// referred customer id → Attribution.
    attributions: sled::Tree,
    /// referrer id · 0 · referred id → empty.
    referred: sled::Tree,
    /// commission id (`com_` + invoice id) → Commission.
    commissions: sled::Tree,
    /// seq (u64 BE) → LedgerEntry.
    ledger: sled::Tree,
    /// customer id → Partner.
    partners: sled::Tree,
    /// `ledger` → u64 BE.
    counters: sled::Tree,
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| ReferralError::Corrupt(format!("{what}: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("referral records serialize")
}

fn pair_key(owner: &str, other: &str) -> Vec<u8> {
    let mut k = owner.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(other.as_bytes());
    k
}

fn tx_error(e: TransactionError<ReferralError>) -> ReferralError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => ReferralError::Store(e),
    }
}

type Tx<T> = std::result::Result<T, ConflictableTransactionError<ReferralError>>;

/// Appends a ledger entry (numbered from the counter) inside a transaction.
fn append(ledger: &TransactionalTree, counters: &TransactionalTree, mut entry: LedgerEntry) -> Tx<()> {
    let seq = match counters.get(b"ledger")? {
        Some(v) => u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])) + 1,
        None => 1,
    };
    counters.insert(b"ledger", &seq.to_be_bytes())?;
    entry.seq = seq;
    ledger.insert(&seq.to_be_bytes(), encode(&entry))?;
    Ok(())
}

fn read_commission(tree: &TransactionalTree, id: &str) -> Tx<Option<Commission>> {
    match tree.get(id.as_bytes())? {
        Some(v) => Ok(Some(decode(&v, "commission").map_err(ConflictableTransactionError::Abort)?)),
        None => Ok(None),
    }
}

impl Referrals {
    pub fn open(db: &sled::Db) -> Result<Referrals> {
        Ok(Referrals {
            codes: db.open_tree("referral_codes")?,
            code_of: db.open_tree("referral_code_of")?,
            attributions: db.open_tree("referral_attributions")?,
            referred: db.open_tree("referral_referred")?,
            commissions: db.open_tree("referral_commissions")?,
            ledger: db.open_tree("referral_ledger")?,
            partners: db.open_tree("referral_partners")?,
            counters: db.open_tree("referral_counters")?,
        })
    }

    /// The customer's referral code, made on first use (random, so it reveals nothing
    /// about the customer and cannot be guessed from their id).
    pub fn code_for(&self, customer_id: &str) -> Result<String> {
        if let Some(v) = self.code_of.get(customer_id.as_bytes())? {
            return decode(&v, "code");
        }
        loop {
            let code = crate::accounts::random_base62(10);
            let made = (&self.codes, &self.code_of)
                .transaction(|(codes, code_of)| {
                    if let Some(v) = code_of.get(customer_id.as_bytes())? {
                        return Ok(Some(
                            decode::<String>(&v, "code").map_err(ConflictableTransactionError::Abort)?,
                        ));
                    }
                    if codes.get(code.as_bytes())?.is_some() {
                        return Ok(None);
                    }
                    codes.insert(code.as_bytes(), encode(&customer_id))?;
                    code_of.insert(customer_id.as_bytes(), encode(&code))?;
                    Ok(Some(code.clone()))
                })
                .map_err(tx_error)?;
            if let Some(code) = made {
                return Ok(code);
            }
        }
    }

    /// Whose code `code` is.
    pub fn owner_of(&self, code: &str) -> Result<Option<String>> {
        match self.codes.get(code.as_bytes())? {
            Some(v) => Ok(Some(decode(&v, "code owner")?)),
            None => Ok(None),
        }
    }

    /// Stores `a` unless the customer is already attributed (first touch wins); answers
    /// whether it was stored.
    pub fn attribute(&self, a: &Attribution) -> Result<bool> {
        (&self.attributions, &self.referred)
            .transaction(|(attributions, referred)| {
                if attributions.get(a.referred_id.as_bytes())?.is_some() {
                    return Ok(false);
                }
                attributions.insert(a.referred_id.as_bytes(), encode(a))?;
                referred.insert(pair_key(&a.referrer_id, &a.referred_id), &[])?;
                Ok(true)
            })
            .map_err(tx_error)
    }

    /// Who referred `customer_id`, if anyone.
    pub fn attribution(&self, customer_id: &str) -> Result<Option<Attribution>> {
        match self.attributions.get(customer_id.as_bytes())? {
            Some(v) => Ok(Some(decode(&v, "attribution")?)),
            None => Ok(None),
        }
    }

    /// Everyone `referrer_id` referred, in order of their ids.
    pub fn referred_by(&self, referrer_id: &str) -> Result<Vec<Attribution>> {
        let mut out = Vec::new();
        for item in self.referred.scan_prefix(pair_key(referrer_id, "")) {
            let (k, _) = item?;
            let referred = String::from_utf8_lossy(&k[referrer_id.len() + 1..]).to_string();
            if let Some(a) = self.attribution(&referred)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Every attribution.
    pub fn attributions(&self) -> Result<Vec<Attribution>> {
        self.attributions.iter().map(|item| decode(&item?.1, "attribution")).collect()
    }

    pub fn commission(&self, id: &str) -> Result<Option<Commission>> {
        match self.commissions.get(id.as_bytes())? {
            Some(v) => Ok(Some(decode(&v, "commission")?)),
            None => Ok(None),
        }
    }

    /// Every commission, in id (= invoice) order.
    pub fn commissions(&self) -> Result<Vec<Commission>> {
        self.commissions.iter().map(|item| decode(&item?.1, "commission")).collect()
    }

    /// The commissions earned by `referrer_id`.
    pub fn commissions_of(&self, referrer_id: &str) -> Result<Vec<Commission>> {
        Ok(self.commissions()?.into_iter().filter(|c| c.referrer_id == referrer_id).collect())
    }

    /// The whole ledger, oldest first.
    pub fn ledger(&self) -> Result<Vec<LedgerEntry>> {
        self.ledger.iter().map(|item| decode(&item?.1, "ledger entry")).collect()
    }

    /// Writes `c` with its ledger entry unless a commission with its id exists; answers
    /// the stored commission and whether this call wrote it.
    pub fn insert_commission(&self, c: &Commission, entry: LedgerEntry) -> Result<(Commission, bool)> {
        (&self.commissions, &self.ledger, &self.counters)
            .transaction(|(commissions, ledger, counters)| {
                if let Some(existing) = read_commission(commissions, &c.id)? {
                    return Ok((existing, false));
                }
                commissions.insert(c.id.as_bytes(), encode(c))?;
                append(ledger, counters, entry.clone())?;
                Ok((c.clone(), true))
            })
            .map_err(tx_error)
    }

    /// Changes commission `id` with `change` (which answers the ledger entry to write, or
    /// `None` to leave it as it is) in one transaction with its ledger entry; answers the
    /// commission after and whether it changed.
    pub fn update_commission<F>(&self, id: &str, change: F) -> Result<(Commission, bool)>
    where
        F: Fn(&mut Commission) -> Result<Option<LedgerEntry>>,
    {
        (&self.commissions, &self.ledger, &self.counters)
            .transaction(|(commissions, ledger, counters)| {
                let Some(mut c) = read_commission(commissions, id)? else {
                    return Err(ConflictableTransactionError::Abort(ReferralError::NotFound(format!(
                        "commission '{id}'"
                    ))));
                };
                match change(&mut c).map_err(ConflictableTransactionError::Abort)? {
                    Some(entry) => {
                        commissions.insert(id.as_bytes(), encode(&c))?;
                        append(ledger, counters, entry)?;
                        Ok((c, true))
                    }
                    None => Ok((c, false)),
                }
            })
            .map_err(tx_error)
    }

    /// Commissions waiting for the operator.
    pub fn held(&self) -> Result<Vec<Commission>> {
        Ok(self.commissions()?.into_iter().filter(|c| c.status == CommissionStatus::Held).collect())
    }

    pub fn partner(&self, customer_id: &str) -> Result<Option<Partner>> {
        match self.partners.get(customer_id.as_bytes())? {
            Some(v) => Ok(Some(decode(&v, "partner")?)),
            None => Ok(None),
        }
    }

    pub fn partners(&self) -> Result<Vec<Partner>> {
        self.partners.iter().map(|item| decode(&item?.1, "partner")).collect()
    }

    /// Makes (or re-rates) a partner; answers the record before, if any.
    pub fn put_partner(&self, p: &Partner) -> Result<Option<Partner>> {
        let before = self.partners.insert(p.customer_id.as_bytes(), encode(p))?;
        before.map(|v| decode(&v, "partner")).transpose()
    }

    /// Entries of kind `kind` (for tests and reports).
    pub fn entries_of_kind(&self, kind: EntryKind) -> Result<Vec<LedgerEntry>> {
        Ok(self.ledger()?.into_iter().filter(|e| e.kind == kind).collect())
    }
}
