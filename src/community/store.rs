//! The community trees, values JSON: `community_comments` (paper id, NUL, comment id →
//! comment, so a paper's discussion is one prefix scan in order), `community_comment_ids`
//! (comment id → paper id), `community_reports` (comment id, NUL, reporter → report),
//! `community_bans` (customer id → ban) and `community_events` (id → event).

use super::events::Event;
use super::{Ban, Comment, CommunityError, Report};

#[derive(Clone)]
pub struct Community {
    db: sled::Db,
    comments: sled::Tree,
    comment_ids: sled::Tree,
    reports: sled::Tree,
    bans: sled::Tree,
    events: sled::Tree,
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CommunityError> {
    serde_json::from_slice(bytes).map_err(|e| CommunityError::Corrupt(e.to_string()))
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, CommunityError> {
    serde_json::to_vec(v).map_err(|e| CommunityError::Corrupt(e.to_string()))
}

fn comment_key(paper: &str, id: &str) -> Vec<u8> {
    [paper.as_bytes(), b"\0", id.as_bytes()].concat()
}

impl Community {
    pub fn open(db: &sled::Db) -> Result<Community, CommunityError> {
        Ok(Community {
            db: db.clone(),
            comments: db.open_tree("community_comments")?,
            comment_ids: db.open_tree("community_comment_ids")?,
            reports: db.open_tree("community_reports")?,
            bans: db.open_tree("community_bans")?,
            events: db.open_tree("community_events")?,
        })
    }

    /// A fresh id with `prefix`, sorting in creation order.
    pub fn next_id(&self, prefix: &str) -> Result<String, CommunityError> {
        Ok(format!("{prefix}{:012}", self.db.generate_id()?))
    }

    pub fn put_comment(&self, c: &Comment) -> Result<(), CommunityError> {
        // The lookup first: a crash between the writes leaves an id pointing at nothing.
        self.comment_ids.insert(c.id.as_bytes(), c.paper_id.as_bytes())?;
        self.comments.insert(comment_key(&c.paper_id, &c.id), encode(c)?)?;
        Ok(())
    }

    pub fn comment(&self, id: &str) -> Result<Option<Comment>, CommunityError> {
        let Some(paper) = self.comment_ids.get(id)? else { return Ok(None) };
        let paper = String::from_utf8_lossy(&paper).into_owned();
        self.comments.get(comment_key(&paper, id))?.map(|v| decode(&v)).transpose()
    }

    /// A paper's comments, oldest first (hidden ones included; pages leave them out).
    pub fn comments_of(&self, paper: &str) -> Result<Vec<Comment>, CommunityError> {
        let prefix = [paper.as_bytes(), b"\0"].concat();
        self.comments.scan_prefix(prefix).map(|kv| decode(&kv?.1)).collect()
    }

    /// Records a report (one per reader per comment); answers whether it is new.
    pub fn report(&self, r: &Report) -> Result<bool, CommunityError> {
        let key = [r.comment_id.as_bytes(), b"\0", r.reporter.as_bytes()].concat();
        Ok(self.reports.insert(key, encode(r)?)?.is_none())
    }

    /// Reports waiting for a moderator, oldest comment first.
    pub fn reports(&self) -> Result<Vec<Report>, CommunityError> {
        self.reports.iter().map(|kv| decode(&kv?.1)).collect()
    }

    /// Clears a comment's reports (the moderator dealt with it).
    pub fn resolve_reports(&self, comment_id: &str) -> Result<usize, CommunityError> {
        let prefix = [comment_id.as_bytes(), b"\0"].concat();
        let mut n = 0;
        for kv in self.reports.scan_prefix(prefix) {
            self.reports.remove(kv?.0)?;
            n += 1;
        }
        Ok(n)
    }

    pub fn put_ban(&self, b: &Ban) -> Result<Option<Ban>, CommunityError> {
        self.bans.insert(b.customer_id.as_bytes(), encode(b)?)?.map(|v| decode(&v)).transpose()
    }

    pub fn lift_ban(&self, customer_id: &str) -> Result<Option<Ban>, CommunityError> {
        self.bans.remove(customer_id)?.map(|v| decode(&v)).transpose()
    }

    /// The customer's ban if one is in force at `now` (an expired one is no ban).
    pub fn ban_of(&self, customer_id: &str, now: i64) -> Result<Option<Ban>, CommunityError> {
        let ban: Option<Ban> = self.bans.get(customer_id)?.map(|v| decode(&v)).transpose()?;
        Ok(ban.filter(|b| b.active(now)))
    }

    pub fn bans(&self) -> Result<Vec<Ban>, CommunityError> {
        self.bans.iter().map(|kv| decode(&kv?.1)).collect()
    }

    pub fn put_event(&self, e: &Event) -> Result<Option<Event>, CommunityError> {
        self.events.insert(e.id.as_bytes(), encode(e)?)?.map(|v| decode(&v)).transpose()
    }

    pub fn event(&self, id: &str) -> Result<Option<Event>, CommunityError> {
        self.events.get(id)?.map(|v| decode(&v)).transpose()
    }

    pub fn events(&self) -> Result<Vec<Event>, CommunityError> {
        self.events.iter().map(|kv| decode(&kv?.1)).collect()
    }
}

/// Runs store work on the blocking pool.
pub async fn call<T, F>(f: F) -> Result<T, CommunityError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, CommunityError> + Send + 'static,
{
    crate::engine::blocking(f, || CommunityError::Unavailable).await
}
