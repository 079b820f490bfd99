//! The weekly newsletter's issues: the week's papers most likely to become highly cited,
//! as the serving model saw them when the issue was built. Issues are kept in the
//! `newsletters` tree (number -> issue) and form the public archive; the `newsletter`
//! job builds one a week.

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::store::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub paper_id: String,
    pub title: String,
    pub authors: Vec<String>,
    pub submitted: String,
    pub probability: f64,
    /// `high` or `low` at the model's threshold.
    pub label: String,
    /// The feature that pushed the forecast most, in words.
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    /// 1, 2, 3, ... assigned when stored.
    pub number: u32,
    /// Unix seconds.
    pub built_at: i64,
    /// The week of submissions covered, inclusive, YYYY-MM-DD.
    pub week_from: String,
    pub week_to: String,
    pub model_version: String,
    /// Papers considered (submitted in the week) and the top ones, most likely first.
    pub papers_considered: usize,
    pub items: Vec<Item>,
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
    tree.iter().rev().map(|kv| Ok(codec::decode(&kv?.1)?)).collect()
}

pub fn get(tree: &sled::Tree, number: u32) -> Result<Option<Issue>> {
    tree.get(key(number))?.map(|v| codec::decode(&v).map_err(StoreError::from)).transpose()
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
