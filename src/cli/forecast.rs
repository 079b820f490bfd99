//! `citecast forecast --all`: every stored paper's forecast (of a collection, of a date
//! range) written as JSON Lines, the lines `POST /v1/forecasts/bulk` streams, scored
//! through the batch path straight from the store while no server holds it.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use citecast_actors::dates::{self, Day};
use citecast_actors::forecast::corpus::Corpus;
use citecast_actors::forecast::service::{Collections, Route};
use citecast_actors::forecast::task::Mode;

use super::{CliError, DataDir};
use crate::forecasts::bulk;

/// `citecast forecast`'s settings beyond the data directory.
#[derive(Args, Clone)]
pub struct ForecastArgs {
    /// Forecast every stored paper (of --collection, submitted from --from to --to).
    #[arg(long, required = true)]
    pub all: bool,
    /// The JSON Lines file to write (one forecast or error per paper).
    #[arg(long)]
    pub out: PathBuf,
    /// at_publication or early.
    #[arg(long, default_value = "at_publication")]
    pub mode: String,
    /// Only this collection's papers (default: every collection's).
    #[arg(long)]
    pub collection: Option<String>,
    /// Only papers submitted on or after this day (YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<String>,
    /// Only papers submitted on or before this day (YYYY-MM-DD).
    #[arg(long)]
    pub to: Option<String>,
}

fn day(flag: &str, v: Option<&str>) -> Result<Option<Day>, CliError> {
    v.map(|s| {
        dates::parse(s)
            .ok_or_else(|| CliError::Usage(format!("--{flag} must be a date YYYY-MM-DD, got '{s}'")))
    })
    .transpose()
}

/// `citecast forecast --all --out FILE`.
pub fn forecast(dir: DataDir, args: ForecastArgs) -> Result<(), CliError> {
    let config = dir.config()?;
    super::refuse_missing_default(&config)?;
    let mode = Mode::parse(&args.mode).ok_or_else(|| {
        CliError::Usage(format!("--mode must be at_publication or early, got '{}'", args.mode))
    })?;
    let (from, to) = (day("from", args.from.as_deref())?, day("to", args.to.as_deref())?);
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            return Err(CliError::Usage("--to must not be before --from".into()));
        }
    }
    if let Some(info) = super::running_server(&config) {
        return Err(CliError::Usage(format!(
            "a server is running at {} (pid {}) on this data directory; ask it instead: \
             POST /v1/forecasts/bulk?collection=...&from=...&to=... with an empty body",
            info.addr, info.pid
        )));
    }
    let engine = config.engine();
    let store = citecast_actors::store::Store::open(&engine.store_path(), &Default::default())
        .map_err(CliError::engine)?;
    let known: Vec<String> =
        store.collections().map_err(CliError::engine)?.into_iter().map(|c| c.name).collect();
    let names = match &args.collection {
        Some(c) if !known.contains(c) => {
            return Err(CliError::Usage(format!(
                "no collection '{c}' in {}; collections: {}",
                config.data_dir.display(),
                if known.is_empty() { "none (ingest data first)".into() } else { known.join(", ") }
            )))
        }
        Some(c) => vec![c.clone()],
        None => known,
    };
    let dirs: Vec<&std::path::Path> = engine.model_dirs.iter().map(PathBuf::as_path).collect();
    // The server's active choices are kept here: the same models answer as it would.
    let (mut services, refused) = Collections::load(&dirs, Some(&config.data_dir.join("models")));
    for e in refused {
        eprintln!("model refused: {e}");
    }
    let file = std::fs::File::create(&args.out).map_err(|e| CliError::io(&args.out, e))?;
    let mut out = std::io::BufWriter::new(file);
    let started = Instant::now();
    let (mut written, mut forecasts) = (0usize, 0usize);
    for name in names {
        let corpus = Corpus::from_store_collection(&store, &name).map_err(CliError::engine)?;
        services.set_corpora(vec![(name.clone(), Arc::new(corpus))]);
        let service = services.service(&name).map_err(CliError::engine)?;
        let ids = service.paper_ids(from, to);
        eprintln!("collection {name}: {} papers to forecast", ids.len());
        let route = Route { caller: None, arm: None, collection: Some(name.clone()) };
        for chunk in ids.chunks(bulk::CHUNK) {
            let items: Vec<bulk::Item> =
                chunk.iter().map(|id| bulk::Item { line: None, id: Ok(id.clone()), mode: None }).collect();
            let groups = bulk::groups(&items, mode);
            let answers = vec![Ok(service
                .forecast_batch(chunk, mode, &route)
                .into_iter()
                .map(|r| r.map(|(f, _)| f))
                .collect())];
            let lines = bulk::render(&items, groups, answers, &mut |_| forecasts += 1);
            out.write_all(&lines).map_err(|e| CliError::io(&args.out, e))?;
            written += chunk.len();
            if written.is_multiple_of(bulk::CHUNK * 20) {
                eprintln!(
                    "{written} papers, {:.0} per second",
                    written as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
    }
    out.flush().map_err(|e| CliError::io(&args.out, e))?;
    eprintln!(
        "wrote {} lines ({forecasts} forecasts, {} errors) to {} in {:.1} s",
        written,
        written - forecasts,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
