//! Papers, their citations and authors: the API's records and each paper's public page.

pub mod admin;
mod error;
pub mod job;
pub mod page;
pub mod routes;

/// Imports now running, and those cut short or failed that no re-run has completed.
pub fn split_imports(
    imports: Vec<citecast_actors::imports::ImportRecord>,
) -> (Vec<citecast_actors::imports::ImportRecord>, Vec<citecast_actors::imports::ImportRecord>) {
    use citecast_actors::imports::ImportStatus as S;
    let (running, rest): (Vec<_>, Vec<_>) = imports.into_iter().partition(|r| r.status == S::Running);
    (running, rest.into_iter().filter(|r| matches!(r.status, S::Interrupted | S::Failed)).collect())
}

/// A paper's arXiv page, when its id is an arXiv identifier (`hep-th/9711200`,
/// `0704.0001`); `None` for ids of other sources.
pub fn arxiv_url(id: &str) -> Option<String> {
    let old_style = id.split_once('/').is_some_and(|(archive, number)| {
        !archive.is_empty()
            && archive.chars().all(|c| c.is_ascii_lowercase() || c == '-' || c == '.')
            && number.len() == 7
            && number.bytes().all(|b| b.is_ascii_digit())
    });
    let new_style = id.split_once('.').is_some_and(|(yymm, n)| {
        yymm.len() == 4
            && yymm.bytes().all(|b| b.is_ascii_digit())
            && (4..=5).contains(&n.len())
            && n.bytes().all(|b| b.is_ascii_digit())
    });
    (old_style || new_style).then(|| format!("https://arxiv.org/abs/{id}"))
}

/// A paper id as the product accepts it (a path, a batch, a page): trimmed, an `arXiv:`
/// prefix dropped, at most 128 characters, no control characters. The error says why not.
pub fn clean_id(id: &str) -> Result<String, &'static str> {
    let id = id.trim();
    let id = id.strip_prefix("arXiv:").or_else(|| id.strip_prefix("arxiv:")).unwrap_or(id);
    if id.is_empty() {
        return Err("the paper id is empty");
    }
    if id.len() > 128 || id.chars().any(char::is_control) {
        return Err("the paper id is not a valid id");
    }
    Ok(id.to_string())
}
