//! The newsletter's issues in sled (the `newsletters` tree: number -> issue), opened from
//! the engine's database; the only code touching that tree, behind [`IssueStore`].

use std::sync::Arc;

use citecast_actors::codec;

use super::error::NewsletterError;
use super::Issue;

type Result<T, E = NewsletterError> = std::result::Result<T, E>;

/// The newsletter's issues as the product reads and writes them. [`SledIssues`] keeps
/// them in sled; another backend implements the same calls. The calls block (storage
/// I/O): async code runs them on the blocking pool ([`call`]).
pub trait IssueStore: Send + Sync {
    /// Stores `issue` as the next number, unless the latest issue already covers the same
    /// week (a second run in one week replaces nothing and adds nothing). Returns the
    /// stored issue's number and whether it is new.
    fn save(&self, issue: Issue) -> Result<(u32, bool)>;
    /// Every issue, newest first.
    fn list(&self) -> Result<Vec<Issue>>;
    fn get(&self, number: u32) -> Result<Option<Issue>>;
}

/// Runs a store call on the blocking pool, off the async workers.
pub async fn call<T, F>(store: &Arc<dyn IssueStore>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn IssueStore) -> Result<T> + Send + 'static,
{
    let store = store.clone();
    actix_web::rt::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|_| NewsletterError::Unavailable)?
}

/// The issues in the `newsletters` tree (number, big-endian -> issue).
pub struct SledIssues {
    tree: sled::Tree,
}

impl SledIssues {
    pub fn open(db: &sled::Db) -> Result<SledIssues> {
        Ok(SledIssues { tree: db.open_tree("newsletters")? })
    }
}

fn key(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}

impl IssueStore for SledIssues {
    fn save(&self, mut issue: Issue) -> Result<(u32, bool)> {
        if let Some((_, v)) = self.tree.last()? {
            let last: Issue = codec::decode(&v)?;
            if last.week_to == issue.week_to {
                return Ok((last.number, false));
            }
            issue.number = last.number + 1;
        } else {
            issue.number = 1;
        }
        self.tree.insert(key(issue.number), codec::encode(&issue)?)?;
        self.tree.flush()?;
        Ok((issue.number, true))
    }

    fn list(&self) -> Result<Vec<Issue>> {
        let mut out = Vec::new();
        for kv in self.tree.iter().rev() {
            out.push(codec::decode(&kv?.1)?);
        }
        Ok(out)
    }

    fn get(&self, number: u32) -> Result<Option<Issue>> {
        Ok(match self.tree.get(key(number))? {
            Some(v) => Some(codec::decode(&v)?),
            None => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(week_to: &str) -> Issue {
        Issue {
            number: 0,
            built_at: 1,
            week_from: "2003-01-01".into(),
            week_to: week_to.into(),
            model_version: "m".into(),
            papers_considered: 3,
            items: vec![],
        }
    }

    #[test]
    fn issues_are_numbered_and_a_week_is_built_once() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let t = SledIssues::open(&db).unwrap();
        assert_eq!(t.save(issue("2003-01-07")).unwrap(), (1, true));
        assert_eq!(t.save(issue("2003-01-07")).unwrap(), (1, false));
        assert_eq!(t.save(issue("2003-01-14")).unwrap(), (2, true));
        let all = t.list().unwrap();
        assert_eq!(all.iter().map(|i| i.number).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(t.get(1).unwrap().unwrap().week_to, "2003-01-07");
        assert!(t.get(9).unwrap().is_none());
    }
}
