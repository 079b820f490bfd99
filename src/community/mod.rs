//! Community: discussions under each paper's page (Markdown, rendered and sanitised),
//! edits within [`EDIT_WINDOW_SECS`], reports into a moderator queue, bans with a reason
//! and an expiry that stop posting and editing, spam limits (per person and per address,
//! and few links for new accounts), the community guidelines page, and events (`/events`
//! and `/events.ics`) with times in the reader's zone.
//!
//! This file is the plain logic; `store.rs` keeps the trees, `page.rs` and `admin.rs` the
//! pages and operator endpoints.

pub mod admin;
pub mod error;
pub mod events;
pub mod page;
pub mod routes;
pub mod store;
pub mod zone;

use serde::{Deserialize, Serialize};

pub use error::CommunityError;

/// How long after posting a comment its author may edit it.
pub const EDIT_WINDOW_SECS: i64 = 10 * 60;
/// Longest comment, in bytes of Markdown.
pub const MAX_COMMENT_BYTES: usize = 10_000;
/// An account younger than this is new: its comments may carry few links.
pub const NEW_ACCOUNT_SECS: i64 = 7 * 86_400;
pub const NEW_ACCOUNT_LINKS: usize = 1;
pub const MAX_LINKS: usize = 10;

/// One comment under a paper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub id: String,
    pub paper_id: String,
    /// The author's customer id (shown by the customer's name).
    pub author: String,
    /// Markdown as written.
    pub body: String,
    pub created: i64,
    pub edited: Option<i64>,
    /// Hidden by a moderator: kept for the record, not shown.
    pub hidden: Option<Moderation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moderation {
    pub at: i64,
    pub by: String,
    pub reason: String,
}

/// A reader's report of a comment, waiting in the moderator queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub comment_id: String,
    pub reporter: String,
    pub reason: String,
    pub at: i64,
}

/// A ban: no posting or editing until `until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ban {
    pub customer_id: String,
    pub reason: String,
    pub at: i64,
    pub until: i64,
    pub by: String,
}

impl Ban {
    pub fn active(&self, now: i64) -> bool {
        now < self.until
    }
}

/// Markdown to HTML that is safe to put in a page: pulldown-cmark renders, ammonia keeps
/// only harmless tags and attributes (no scripts, no event handlers, no `javascript:`
/// links), and every link gets `rel="nofollow ugc noopener noreferrer"`.
pub fn render_markdown(text: &str) -> String {
    use pulldown_cmark::{html, Options, Parser};
    let mut raw = String::new();
    html::push_html(&mut raw, Parser::new_ext(text, Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES));
    // No images: a comment must not make readers' browsers fetch anything.
    ammonia::Builder::default()
        .rm_tags(["img"])
        .link_rel(Some("nofollow ugc noopener noreferrer"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .clean(&raw)
        .to_string()
}

/// Links in a comment, as written: `http(s)://` and `www.` occurrences.
pub fn count_links(text: &str) -> usize {
    let lower = text.to_ascii_lowercase();
    lower.matches("http://").count() + lower.matches("https://").count() + lower.matches("www.").count()
        - lower.matches("://www.").count()
}

/// Checks a comment's text before it is stored: not empty, not too long, not too many
/// links for the account's age.
pub fn check_comment(text: &str, account_created: i64, now: i64) -> Result<(), CommunityError> {
    if text.trim().is_empty() {
        return Err(CommunityError::Invalid("Write something before posting.".into()));
    }
    if text.len() > MAX_COMMENT_BYTES {
        return Err(CommunityError::Invalid(format!(
            "A comment is at most {MAX_COMMENT_BYTES} characters; this one is {}.",
            text.len()
        )));
    }
    let links = count_links(text);
    let new = now - account_created < NEW_ACCOUNT_SECS;
    let allowed = if new { NEW_ACCOUNT_LINKS } else { MAX_LINKS };
    if links > allowed {
        let why = if new { "New accounts (under a week old) may post" } else { "A comment may carry" };
        return Err(CommunityError::Invalid(format!(
            "{why} at most {allowed} link{}; this one has {links}.",
            if allowed == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

/// Whether `who` may edit `c` at `now`: their own, shown, and within the edit window.
pub fn check_edit(c: &Comment, who: &str, now: i64) -> Result<(), CommunityError> {
    if c.author != who {
        return Err(CommunityError::Forbidden("Only its author can edit a comment.".into()));
    }
    if c.hidden.is_some() {
        return Err(CommunityError::Forbidden("A moderator hid this comment; it cannot be edited.".into()));
    }
    if now - c.created > EDIT_WINDOW_SECS {
        return Err(CommunityError::Forbidden(
            "Comments can be edited for 10 minutes after posting; this one can no longer be changed.".into(),
        ));
    }
    Ok(())
}

/// The ban's message to the person it stops.
pub fn ban_message(b: &Ban) -> String {
    format!(
        "You are banned from posting until {} UTC. Reason: {}",
        citecast_actors::dates::rfc3339(b.until).replace('T', " ").trim_end_matches('Z'),
        b.reason
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_scripts_never_survive() {
        let html = render_markdown("**bold** [x](https://example.org) <script>alert(1)</script> <img src=x onerror=alert(1)> [j](javascript:alert(1))");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(html.contains("rel=\"nofollow ugc noopener noreferrer\""), "{html}");
        let lower = html.to_lowercase();
        assert!(
            !lower.contains("<script") && !lower.contains("onerror") && !lower.contains("javascript:"),
            "{html}"
        );
    }

    #[test]
    fn links_are_limited_for_new_accounts() {
        assert_eq!(count_links("see https://a.org and http://b.org and www.c.org and https://www.d.org"), 4);
        let now = 10 * 86_400;
        let two = "https://a.org https://b.org";
        assert!(check_comment(two, now - 86_400, now).is_err(), "a day-old account");
        assert!(check_comment(two, 0, now).is_ok(), "a ten-day-old account");
        assert!(check_comment("one https://a.org", now, now).is_ok());
        assert!(check_comment("  ", 0, now).is_err());
        assert!(check_comment(&"x".repeat(MAX_COMMENT_BYTES + 1), 0, now).is_err());
    }

    #[test]
    fn edits_only_by_the_author_within_ten_minutes() {
        let c = Comment {
            id: "m1".into(),
            paper_id: "p".into(),
            author: "cus_a".into(),
            body: "x".into(),
            created: 1000,
            edited: None,
            hidden: None,
        };
        assert!(check_edit(&c, "cus_a", 1000 + EDIT_WINDOW_SECS).is_ok());
        assert!(check_edit(&c, "cus_a", 1001 + EDIT_WINDOW_SECS).is_err());
        assert!(check_edit(&c, "cus_b", 1001).is_err());
        let ban =
            Ban { customer_id: "cus_a".into(), reason: "spam".into(), at: 0, until: 50, by: "op".into() };
        assert!(ban.active(49) && !ban.active(50));
    }
}
