//! The contest trees: `contests` (id → contest) and `contest_entries` (`contest id`, NUL,
//! entrant → entry). Values are JSON. An entry is written in one transaction with a read
//! of its contest, so a pick cannot slip in after the lock.

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{Contest, ContestError, Entry, Phase};

#[derive(Clone)]
pub struct Contests {
    db: sled::Db,
    contests: sled::Tree,
    entries: sled::Tree,
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ContestError> {
    serde_json::from_slice(bytes).map_err(|e| ContestError::Corrupt(e.to_string()))
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ContestError> {
    serde_json::to_vec(v).map_err(|e| ContestError::Corrupt(e.to_string()))
}

fn entry_key(contest: &str, entrant: &str) -> Vec<u8> {
    [contest.as_bytes(), b"\0", entrant.as_bytes()].concat()
}

fn abort(e: ContestError) -> ConflictableTransactionError<ContestError> {
    ConflictableTransactionError::Abort(e)
}

fn unwrap_tx(e: TransactionError<ContestError>) -> ContestError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => ContestError::Store(e),
    }
}

impl Contests {
    pub fn open(db: &sled::Db) -> Result<Contests, ContestError> {
        Ok(Contests {
            db: db.clone(),
            contests: db.open_tree("contests")?,
            entries: db.open_tree("contest_entries")?,
        })
    }

    /// A fresh contest id, in creation order.
    pub fn next_id(&self) -> Result<String, ContestError> {
        Ok(format!("c{}", self.db.generate_id()? + 1))
    }

    pub fn put(&self, c: &Contest) -> Result<(), ContestError> {
        self.contests.insert(c.id.as_bytes(), encode(c)?)?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<Contest>, ContestError> {
        self.contests.get(id)?.map(|v| decode(&v)).transpose()
    }

    /// Every contest, newest first.
    pub fn all(&self) -> Result<Vec<Contest>, ContestError> {
        let mut all: Vec<Contest> =
            self.contests.iter().map(|kv| decode(&kv?.1)).collect::<Result<_, _>>()?;
        all.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        Ok(all)
    }

    pub fn entries(&self, contest: &str) -> Result<Vec<Entry>, ContestError> {
        let prefix = [contest.as_bytes(), b"\0"].concat();
        self.entries.scan_prefix(prefix).map(|kv| decode(&kv?.1)).collect()
    }

    pub fn entry(&self, contest: &str, entrant: &str) -> Result<Option<Entry>, ContestError> {
        self.entries.get(entry_key(contest, entrant))?.map(|v| decode(&v)).transpose()
    }

    /// Every entry of one entrant, across contests.
    pub fn entries_of(&self, entrant: &str) -> Result<Vec<Entry>, ContestError> {
        let mut out = Vec::new();
        for kv in self.entries.iter() {
            let e: Entry = decode(&kv?.1)?;
            if e.entrant == entrant {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Stores `entry` if its contest is still open at `now`; answers the entry it replaced.
    pub fn save_entry(&self, entry: &Entry, now: i64) -> Result<Option<Entry>, ContestError> {
        let key = entry_key(&entry.contest_id, &entry.entrant);
        let bytes = encode(entry)?;
        (&self.contests, &self.entries)
            .transaction(|(contests, entries)| {
                let c: Contest = match contests.get(entry.contest_id.as_bytes())? {
                    Some(v) => decode(&v).map_err(abort)?,
                    None => return Err(abort(ContestError::NotFound(entry.contest_id.clone()))),
                };
                if c.phase(now) != Phase::Open {
                    return Err(abort(ContestError::Refused(
                        "Picks for this contest are locked: its deadline has passed.".into(),
                    )));
                }
                let before = entries.insert(key.as_slice(), bytes.as_slice())?;
                before.map(|b| decode(&b)).transpose().map_err(abort)
            })
            .map_err(unwrap_tx)
    }

    /// Locks the contest now (moving an unreached deadline to now); answers it, or
    /// `None` when it was locked already.
    pub fn lock(&self, id: &str, now: i64) -> Result<Option<Contest>, ContestError> {
        self.contests
            .transaction(|contests| {
                let mut c: Contest = match contests.get(id.as_bytes())? {
                    Some(v) => decode(&v).map_err(abort)?,
                    None => return Err(abort(ContestError::NotFound(id.to_string()))),
                };
                if c.locked_at.is_some() {
                    return Ok(None);
                }
                c.locked_at = Some(now);
                c.deadline = c.deadline.min(now);
                contests.insert(id.as_bytes(), encode(&c).map_err(abort)?)?;
                Ok(Some(c))
            })
            .map_err(unwrap_tx)
    }
}

/// Runs store work on the blocking pool.
pub async fn call<T, F>(f: F) -> Result<T, ContestError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ContestError> + Send + 'static,
{
    crate::engine::blocking(f, || ContestError::Unavailable).await
}
