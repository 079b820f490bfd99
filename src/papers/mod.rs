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
