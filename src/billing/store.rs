//! Billing's sled trees: subscriptions, invoices, the ledger, applied provider events and
//! the audit of transitions. The only place that touches them.

/// Subscriptions, invoices and payments over the store's trees.
pub struct Billing {
    #[allow(dead_code)]
    db: sled::Db,
}

impl Billing {
    pub fn open(db: &sled::Db) -> Result<Billing, sled::Error> {
        Ok(Billing { db: db.clone() })
    }
}
