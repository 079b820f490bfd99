//! The actors: thin shells that own one piece of state each and turn messages into
//! calls on the plain modules ([`crate::store`], [`crate::index`], [`crate::ingest`]).
//!
//! All three run on `SyncArbiter` threads because their work blocks (sled reads,
//! tantivy commits, file parsing); the async HTTP workers only await replies.
//! Keeping the logic out of the handlers means the actor runtime could be swapped
//! without touching it.

//! One actor per file, its messages beside their handlers. Their items are re-exported
//! here, so callers name `citecast_actors::actors::GetPaper` whatever file holds it.

/// Declares a message, its reply type, and the handler body on the actor's state.
macro_rules! message {
    ($actor:ty, $state:ident, $msg:ty => $reply:ty, |$s:ident, $m:pat_param| $body:expr) => {
        impl Message for $msg {
            type Result = $reply;
        }
        impl Handler<$msg> for $actor {
            type Result = $reply;
            fn handle(&mut self, msg: $msg, _: &mut Self::Context) -> $reply {
                let $s = &self.$state;
                let $m = msg;
                $body
            }
        }
    };
}

mod index;
mod ingest;
mod model;
mod store;

pub use index::*;
pub use ingest::*;
pub use model::*;
pub use store::*;
