//! `citecast ingest`, `stats`, `backup` and `restore`: the data directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use citecast_actors::actors::{GetStats, IngestFiles, ListImports};
use citecast_actors::imports::ImportRecord;
use citecast_actors::ingest::{IngestReport, SourceFormat};
use citecast_actors::store::Stats;
use citecast_actors::Engine;

use super::{admin_json, running_server, CliError};
use crate::config::Config;

/// What `citecast ingest` was asked for besides the files.
pub struct IngestChoice {
    pub max_refs_per_paper: Option<usize>,
    pub format: SourceFormat,
    pub collection: Option<String>,
}

pub fn ingest(config: Config, files: Vec<PathBuf>, json: bool, choice: IngestChoice) -> Result<(), CliError> {
    let IngestChoice { max_refs_per_paper, format, collection } = choice;
    let mut paths = Vec::with_capacity(files.len());
    for f in files {
        let abs = std::fs::canonicalize(&f).map_err(|e| CliError::io(&f, e))?;
        paths.push(abs);
    }
    let reports: Vec<IngestReport> = if let Some(info) = running_server(&config) {
        eprintln!("server running at {} (pid {}): importing through it", info.addr, info.pid);
        let mut body = serde_json::json!({ "paths": paths, "format": format });
        if let Some(n) = max_refs_per_paper {
            body["max_refs_per_paper"] = n.into();
        }
        if let Some(c) = &collection {
            body["collection"] = c.as_str().into();
        }
        let body = body.to_string();
        let value = admin_json(&info, "POST", "/admin/ingest", Some(&body), Duration::from_secs(3600))?;
        serde_json::from_value(value["reports"].clone()).map_err(|e| CliError::Admin(e.to_string()))?
    } else {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| CliError::io(&config.data_dir, e))?;
        let mut engine_config = config.engine();
        if config.store_cache_bytes == 0 {
            engine_config.store.cache_bytes = citecast_actors::store::BULK_CACHE_BYTES;
        }
        actix_web::rt::System::new().block_on(async move {
            let engine = Engine::start(&engine_config).map_err(CliError::engine)?;
            let progress = Some(crate::cli::progress::reporter());
            engine
                .ingest
                .send(IngestFiles { paths, progress, max_refs_per_paper, format, collection })
                .await
                .map_err(CliError::engine)?
                .map_err(CliError::engine)
        })?
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&reports).unwrap_or_default());
        return Ok(());
    }
    for r in &reports {
        println!("{}", r.file);
        if let (Some(f), Some(c)) = (r.format, &r.collection) {
            let f =
                serde_json::to_value(f).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            println!("  format {f}, collection {c}");
        }
        println!(
            "  lines {}, papers: {} new, {} updated, {} unchanged; citations: {} new, {} unchanged",
            r.lines,
            r.papers_new,
            r.papers_updated,
            r.papers_unchanged,
            r.citations_new,
            r.citations_unchanged
        );
        if r.references_skipped > 0 {
            println!("  {} references without a usable id skipped", r.references_skipped);
        }
        if r.aliases_ambiguous > 0 {
            println!("  {} aliases already held by another paper (left ambiguous):", r.aliases_ambiguous);
            for c in &r.alias_conflicts {
                println!("    line {}: '{}' of {} is also claimed by {}", c.line, c.alias, c.paper, c.other);
            }
        }
        if r.errors > 0 {
            println!("  {} lines rejected:", r.errors);
            for e in &r.error_samples {
                println!("    line {}: {}", e.line, e.reason);
            }
            if r.errors as usize > r.error_samples.len() {
                println!("    ... and {} more", r.errors as usize - r.error_samples.len());
            }
        }
    }
    let new: u64 = reports.iter().map(IngestReport::new_records).sum();
    println!("{new} new records");
    Ok(())
}

pub fn stats(config: Config, json: bool) -> Result<(), CliError> {
    let (stats, incomplete): (Stats, Vec<ImportRecord>) = if let Some(info) = running_server(&config) {
        let value = admin_json(&info, "GET", "/admin/stats", None, Duration::from_secs(30))?;
        let parse = |v: &serde_json::Value| v.clone();
        (
            serde_json::from_value(parse(&value["store"])).map_err(|e| CliError::Admin(e.to_string()))?,
            serde_json::from_value(parse(&value["imports_incomplete"])).unwrap_or_default(),
        )
    } else {
        if !config.data_dir.join("store").exists() {
            return Err(CliError::Usage(format!(
                "{} holds no citecast data; run `citecast serve` or `citecast ingest` first",
                config.data_dir.display()
            )));
        }
        let mut engine_config = config.engine();
        if config.store_cache_bytes == 0 {
            engine_config.store.cache_bytes = citecast_actors::store::BULK_CACHE_BYTES;
        }
        actix_web::rt::System::new().block_on(async move {
            let engine = Engine::start(&engine_config).map_err(CliError::engine)?;
            let stats =
                engine.store.send(GetStats).await.map_err(CliError::engine)?.map_err(CliError::engine)?;
            let imports =
                engine.store.send(ListImports).await.map_err(CliError::engine)?.map_err(CliError::engine)?;
            Ok::<_, CliError>((stats, crate::papers::split_imports(imports).1))
        })?
    };
    if json {
        let mut v = serde_json::to_value(&stats).unwrap_or_default();
        v["imports_incomplete"] = serde_json::to_value(&incomplete).unwrap_or_default();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("papers      {}", stats.papers);
        println!("citations   {}", stats.citations);
        println!("authors     {}", stats.authors);
        println!(
            "submitted   {} .. {}",
            stats.first_submitted.as_deref().unwrap_or("-"),
            stats.last_submitted.as_deref().unwrap_or("-")
        );
        println!("store size  {:.1} MB", stats.size_on_disk_bytes as f64 / 1e6);
        for r in &incomplete {
            println!(
                "INCOMPLETE  import {} ({:?}, {} lines read) of {}: re-run it to complete it",
                r.id,
                r.status,
                r.lines,
                r.files.join(", ")
            );
        }
    }
    Ok(())
}

pub fn backup(config: Config, file: PathBuf) -> Result<(), CliError> {
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(parent).map_err(|e| CliError::io(parent, e))?;
    let file = dir.join(file.file_name().ok_or_else(|| CliError::Usage("FILE must name a file".into()))?);
    let summary = if let Some(info) = running_server(&config) {
        let body = serde_json::json!({ "path": file }).to_string();
        admin_json(&info, "POST", "/admin/backup", Some(&body), Duration::from_secs(3600))?
    } else {
        if !config.store_path_exists() {
            return Err(CliError::Usage(format!("{} holds no citecast data", config.data_dir.display())));
        }
        let store = citecast_actors::store::Store::open(&config.engine().store_path(), &Default::default())
            .map_err(CliError::engine)?;
        if let Err(e) = citecast_actors::backup::remove_interrupted(&store) {
            tracing::warn!(error = %e, "cannot clear interrupted backups");
        }
        let index_dir = config.engine().index_path();
        let source = citecast_actors::backup::IndexSource { dir: &index_dir, live: None };
        let s = citecast_actors::backup::backup_with_index(&store, Some(source), &file)
            .map_err(CliError::engine)?;
        serde_json::to_value(s).unwrap_or_default()
    };
    println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    Ok(())
}

/// `citecast restore`.
pub fn restore(config: Config, file: PathBuf) -> Result<(), CliError> {
    let summary = citecast_actors::backup::restore(&file, &config.data_dir).map_err(CliError::engine)?;
    println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    let index = if summary.index_files > 0 {
        "the search index came with it (rebuilt on the first `serve` only if it lags the store)"
    } else {
        "the backup holds no search index: it is rebuilt on the first `serve`"
    };
    eprintln!("restored into {}; {index}", config.data_dir.display());
    Ok(())
}
