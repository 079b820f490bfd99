//! The citecast engine: actors that own ingestion, the sled store, the tantivy topic
//! index and (later) the model and rate-limit state. The binary talks to them by
//! message only; the logic lives in plain modules so it can be tested without actors.

pub mod actors;
pub mod backup;
pub mod codec;
pub mod dates;
pub mod files;
pub mod forecast;
pub mod importers;
pub mod imports;
pub mod index;
pub mod ingest;
pub mod journal;
pub mod migrate;
pub mod names;
pub mod records;
pub mod schedule;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix::{Addr, SyncArbiter};

pub use actors::{IndexActor, IngestActor, StoreActor};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot open the store in {path}: {source}")]
    Store { path: String, source: store::StoreError },
    #[error("cannot open the search index in {path}: {source}")]
    Index { path: String, source: index::IndexError },
}

/// Settings the engine needs; the binary fills them from its one config struct.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    pub store: store::StoreConfig,
    /// Threads answering store queries.
    pub store_threads: usize,
    /// Threads answering searches.
    pub index_threads: usize,
    /// Directories of versioned model artefacts to load (shipped, then trained locally).
    pub model_dirs: Vec<PathBuf>,
    /// Memory bounds of imports (the spill directory is `DATA_DIR/tmp`).
    pub ingest: ingest::IngestOptions,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let data_dir: PathBuf = data_dir.into();
        let ingest = ingest::IngestOptions { spill_dir: Some(data_dir.join("tmp")), ..Default::default() };
        EngineConfig {
            ingest,
            data_dir,
            store: store::StoreConfig::default(),
            store_threads: (cores * 2).clamp(2, 16),
            index_threads: cores.clamp(2, 8),
            model_dirs: Vec::new(),
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    pub fn index_path(&self) -> PathBuf {
        self.data_dir.join("index")
    }
}

/// A counter others may read but only the owner bumps; caches compare it to know
/// when their entries went stale.
#[derive(Clone, Default)]
pub struct Version(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Version {
    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn bump(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Addresses of the running actors.
#[derive(Clone)]
pub struct Engine {
    pub store: Addr<StoreActor>,
    pub index: Addr<IndexActor>,
    pub ingest: Addr<IngestActor>,
    pub model: Addr<actors::ModelActor>,
    /// Bumped by every data write (papers, citations): response caches compare it.
    pub data_version: Version,
    /// Bumped when a mode's active model changes: the forecast cache compares it.
    pub models_version: Version,
    /// The sled database, for the product's features to open their own trees in (each
    /// feature's `store.rs`); the engine's trees are its own.
    pub db: sled::Db,
    /// Running rollouts' shares, for routing a caller to an arm.
    pub routes: forecast::rollout::RouteTable,
}

impl Engine {
    /// Opens the data directory and starts the actors. Must run inside an actix system.
    pub fn start(config: &EngineConfig) -> Result<Engine, EngineError> {
        let store = open_store(&config.store_path(), &config.store)?;
        let store_err =
            |source| EngineError::Store { path: config.store_path().display().to_string(), source };
        if let Err(e) = backup::remove_interrupted(&store) {
            tracing::warn!(error = %e, "cannot clear interrupted backups");
        }
        let db = store.db().clone();
        let data_version = store.generation_version();
        let index_path = config.index_path();
        let index = index::TopicIndex::open(&index_path)
            .map_err(|source| EngineError::Index { path: index_path.display().to_string(), source })?;
        let index = Arc::new(index);
        let journal = journal::Journal::open(store.db()).map_err(store_err)?;
        let imports = imports::Imports::open(store.db()).map_err(store_err)?;
        // Nothing imports yet: whatever the record says is running was cut short.
        for r in imports.mark_interrupted().map_err(store_err)? {
            tracing::warn!(import = %r.id, source = %r.source, lines = r.lines, "import interrupted by a stop; re-run it to complete it");
        }
        let (idx, idx_dir) = (index.clone(), index_path.clone());
        let im = imports.clone();
        let store_addr = SyncArbiter::start(config.store_threads, move || {
            StoreActor::new(store.clone(), journal.clone(), im.clone())
                .with_index(idx_dir.clone(), idx.clone())
        });
        let index_addr = SyncArbiter::start(config.index_threads, move || IndexActor::new(index.clone()));
        if let Some(dir) = &config.ingest.spill_dir {
            match ingest::remove_stale_spills(dir) {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!(files = n, dir = %dir.display(), "removed spill files of an interrupted import")
                }
                Err(e) => tracing::warn!(error = %e, dir = %dir.display(), "cannot clear old spill files"),
            }
        }
        let (s, i) = (store_addr.clone(), index_addr.clone());
        let (im, opts) = (imports.clone(), config.ingest.clone());
        let ingest_addr =
            SyncArbiter::start(1, move || IngestActor::new(s.clone(), i.clone(), im.clone(), opts.clone()));
        let dirs: Vec<&Path> = config.model_dirs.iter().map(PathBuf::as_path).collect();
        let state_dir = config.data_dir.join("models");
        let (service, errors) = forecast::service::Collections::load(&dirs, Some(&state_dir));
        let routes = forecast::rollout::RouteTable::default();
        let r = routes.clone();
        let models_version = Version::default();
        let mv = models_version.clone();
        for e in errors {
            tracing::error!(error = %e, "model refused; the others keep serving");
        }
        let service = std::sync::Mutex::new(Some(service));
        let (s, v) = (store_addr.clone(), data_version.clone());
        let model = SyncArbiter::start(1, move || {
            let service = service.lock().ok().and_then(|mut g| g.take()).unwrap_or_else(|| {
                // A restarted arbiter thread starts without models rather than crash-looping.
                forecast::service::Collections::load(&[], None).0
            });
            actors::ModelActor::new(service, s.clone(), v.clone(), mv.clone(), r.clone())
        });
        Ok(Engine {
            store: store_addr,
            index: index_addr,
            ingest: ingest_addr,
            model,
            data_version,
            models_version,
            db,
            routes,
        })
    }
}

fn open_store(path: &Path, config: &store::StoreConfig) -> Result<store::Store, EngineError> {
    store::Store::open(path, config)
        .map_err(|source| EngineError::Store { path: path.display().to_string(), source })
}
