//! The newsletter's issues in sled (the `newsletters` tree: number -> issue), opened from
//! the engine's database; the only code touching that tree.

use citecast_actors::codec;

use super::error::NewsletterError;
use super::Issue;

type Result<T, E = NewsletterError> = std::result::Result<T, E>;

/// Runs `f` on the issues' tree on the blocking pool, off the async workers.
pub async fn with_tree<T, F>(db: &sled::Db, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&sled::Tree) -> Result<T> + Send + 'static,
{
    let db = db.clone();
    actix_web::rt::task::spawn_blocking(move || f(&tree(&db)?))
        .await
        .map_err(|_| NewsletterError::Unavailable)?
}

/// The issues' tree.
pub fn tree(db: &sled::Db) -> Result<sled::Tree> {
    Ok(db.open_tree("newsletters")?)
}

fn key(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}

/// Stores `issue` as the next number, unless the latest issue already covers the same
/// week (a second run in one week replaces nothing and adds nothing). Returns the stored
/// issue's number and whether it is new.
pub fn save(tree: &sled::Tree, mut issue: Issue) -> Result<(u32, bool)> {
    if let Some((_, v)) = tree.last()? {
        let last: Issue = codec::decode(&v)?;
        if last.week_to == issue.week_to {
            return Ok((last.number, false));
        }
        issue.number = last.number + 1;
    } else {
        issue.number = 1;
    }
    tree.insert(key(issue.number), codec::encode(&issue)?)?;
    tree.flush()?;
    Ok((issue.number, true))
}

/// Every issue, newest first.
pub fn list(tree: &sled::Tree) -> Result<Vec<Issue>> {
    let mut out = Vec::new();
    for kv in tree.iter().rev() {
        out.push(codec::decode(&kv?.1)?);
    }
    Ok(out)
}

pub fn get(tree: &sled::Tree, number: u32) -> Result<Option<Issue>> {
    Ok(match tree.get(key(number))? {
        Some(v) => Some(codec::decode(&v)?),
        None => None,
    })
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
        let t = db.open_tree("newsletters").unwrap();
        assert_eq!(save(&t, issue("2003-01-07")).unwrap(), (1, true));
        assert_eq!(save(&t, issue("2003-01-07")).unwrap(), (1, false));
        assert_eq!(save(&t, issue("2003-01-14")).unwrap(), (2, true));
        let all = list(&t).unwrap();
        assert_eq!(all.iter().map(|i| i.number).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(get(&t, 1).unwrap().unwrap().week_to, "2003-01-07");
        assert!(get(&t, 9).unwrap().is_none());
    }
}
