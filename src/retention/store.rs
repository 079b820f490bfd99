//! The win-back mails sent (`retention_winback`: customer → unix seconds), so each
//! cancellation gets one and the win-back rate can be counted. The only code touching it.

pub struct WinBacks {
    tree: sled::Tree,
}

impl WinBacks {
    pub fn open(db: &sled::Db) -> Result<WinBacks, sled::Error> {
        Ok(WinBacks { tree: db.open_tree("retention_winback")? })
    }

    /// The mail for the cancellation at `canceled_at` was sent at `at` (keyed by both, so
    /// a customer who comes back and cancels again is written to again).
    pub fn record(&self, customer_id: &str, canceled_at: i64, at: i64) -> Result<bool, sled::Error> {
        let key = format!("{customer_id}\0{canceled_at}");
        Ok(self.tree.compare_and_swap(key, None as Option<&[u8]>, Some(at.to_be_bytes().as_slice()))?.is_ok())
    }

    pub fn sent(&self, customer_id: &str, canceled_at: i64) -> Result<bool, sled::Error> {
        self.tree.contains_key(format!("{customer_id}\0{canceled_at}"))
    }

    /// (customer, sent at) of every win-back mail.
    pub fn all(&self) -> Result<Vec<(String, i64)>, sled::Error> {
        self.tree
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let customer =
                    String::from_utf8_lossy(k.split(|b| *b == 0).next().unwrap_or_default()).into_owned();
                Ok((customer, i64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8]))))
            })
            .collect()
    }
}
