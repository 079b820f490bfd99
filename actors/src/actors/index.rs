//! The index actor: owns the tantivy index, its single `IndexWriter` and its reader.

use std::sync::Arc;

use actix::prelude::*;

use crate::index::{Facets, IndexError, SearchRequest, SearchResults, TopicIndex};
use crate::records::Paper;

/// Owns the tantivy index (its single writer and its reader).
pub struct IndexActor {
    index: Arc<TopicIndex>,
}

impl IndexActor {
    pub fn new(index: Arc<TopicIndex>) -> Self {
        IndexActor { index }
    }
}

impl Actor for IndexActor {
    type Context = SyncContext<Self>;
}

pub struct Search(pub SearchRequest);
message!(IndexActor, index, Search => Result<SearchResults, IndexError>, |ix, m| ix.search(&m.0));

/// A search computing only the facets asked for (see [`Facets`]).
pub struct SearchWith(pub SearchRequest, pub Facets);
message!(IndexActor, index, SearchWith => Result<SearchResults, IndexError>, |ix, m| ix.search_with(&m.0, m.1));

/// Adds or replaces papers, all of one collection.
pub struct UpsertPapers {
    pub papers: Vec<Paper>,
    pub collection: String,
}
message!(IndexActor, index, UpsertPapers => Result<(), IndexError>, |ix, m| ix.upsert(&m.papers, &m.collection));

pub struct CommitIndex;
message!(IndexActor, index, CommitIndex => Result<(), IndexError>, |ix, _m| ix.commit());

pub struct ClearIndex;
message!(IndexActor, index, ClearIndex => Result<(), IndexError>, |ix, _m| ix.clear());

pub struct IndexDocCount;
message!(IndexActor, index, IndexDocCount => u64, |ix, _m| ix.num_docs());
