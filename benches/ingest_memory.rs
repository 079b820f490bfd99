//! Ingest memory and rejection cost on hostile files. Not a criterion bench: the figure
//! that matters is the peak resident memory of an import, so each scenario runs in a
//! fresh child process (this binary again) that prints its wall time, its peak RSS
//! (`VmHWM` from `/proc/self/status`) and what the import reported.
//!
//! Run with `cargo bench --bench ingest_memory`. Scenarios:
//!
//! - `refs_over_cap`: 200 paper lines with 58,000 references each (the 522 KB-per-line
//!   file of issue 17), default cap of 10,000 references per paper: every line is
//!   rejected with its reason.
//! - `refs_spilled`: 200 lines with 9,000 references each (1.8 M pending references,
//!   under the cap), default bound of 100,000 pending references in memory: the rest go
//!   through a spill file.
//! - `refs_in_memory`: the same file with no bound on pending references (the old
//!   behaviour), for comparison.
//! - `empty_records`: a 1 MB file of `{}` lines: the cost of rejecting one line.
//!
//! Each import writes into a fresh store and search index in a temporary directory,
//! as the ingest actor does. Under `cargo test --benches` a tiny file runs in-process.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use citecast_actors::index::TopicIndex;
use citecast_actors::ingest::{self, IngestOptions, IngestReport};
use citecast_actors::store::{Store, StoreConfig};

const SCENARIOS: [&str; 4] = ["refs_over_cap", "refs_spilled", "refs_in_memory", "empty_records"];

/// `lines` papers, each citing `refs` ids: the other papers of the file (forward and
/// backward) and ids the store does not know, as a hostile or sloppy file would.
fn write_reference_file(path: &Path, lines: usize, refs: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create the bench file"));
    for i in 0..lines {
        write!(
            out,
            "{{\"id\":\"bench/{i:07}\",\"title\":\"Reference-heavy paper {i}\",\"authors\":[\"A. Author{}\"],\"submitted_utc\":\"2001-02-{:02}\",\"references\":[",
            i % 17,
            1 + i % 28
        )
        .unwrap();
        for k in 0..refs {
            let sep = if k == 0 { "" } else { "," };
            if k % 2 == 0 {
                write!(out, "{sep}\"bench/{:07}\"", (i + k) % lines).unwrap();
            } else {
                write!(out, "{sep}\"gone/{:07}\"", (i * 7919 + k) % 1_000_000).unwrap();
            }
        }
        writeln!(out, "]}}").unwrap();
    }
    out.flush().unwrap();
}

fn write_empty_records(path: &Path, bytes: usize) {
    std::fs::write(path, "{}\n".repeat(bytes / 3)).expect("write the bench file");
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn import(dir: &Path, file: &Path, options: &IngestOptions) -> (IngestReport, f64) {
    let store = Store::open(&dir.join("store"), &StoreConfig::default()).expect("open the store");
    let index = TopicIndex::open(&dir.join("index")).expect("open the index");
    let mut sink = ingest::IndexedStoreSink { store: &store, index: &index };
    let started = Instant::now();
    let report = ingest::ingest_file_with(file, &mut sink, None, options).expect("import");
    (report, started.elapsed().as_secs_f64())
}

/// Runs one scenario in this process and prints one line of figures.
fn run_scenario(name: &str) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let file = tmp.path().join("input.jsonl");
    let mut options = IngestOptions { spill_dir: Some(tmp.path().join("tmp")), ..Default::default() };
    match name {
        "refs_over_cap" => write_reference_file(&file, 200, 58_000),
        "refs_spilled" => write_reference_file(&file, 200, 9_000),
        "refs_in_memory" => {
            write_reference_file(&file, 200, 9_000);
            options.max_pending_refs = usize::MAX;
        }
        "empty_records" => write_empty_records(&file, 1 << 20),
        other => panic!("unknown scenario {other}"),
    }
    let file_bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let rss_before = status_kb("VmRSS:");
    let (report, secs) = import(tmp.path(), &file, &options);
    let peak = status_kb("VmHWM:");
    println!(
        "{name:<15} file {:>7.1} MB, {:>7} lines in {:>7.2} s ({:>8.2} µs/line); RSS before {:>5} MB, peak {:>5} MB; papers new {}, citations new {}, rejected {}, spilled refs {}",
        file_bytes as f64 / 1e6,
        report.lines,
        secs,
        secs * 1e6 / report.lines.max(1) as f64,
        rss_before / 1024,
        peak / 1024,
        report.papers_new,
        report.citations_new,
        report.errors,
        report.references_spilled,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Ok(name) = std::env::var("CITECAST_INGEST_SCENARIO") {
        run_scenario(&name);
        return;
    }
    if !common::bench_mode() {
        // Test mode: a tiny file through both paths, in-process.
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("tiny.jsonl");
        write_reference_file(&file, 5, 4);
        let options = IngestOptions {
            max_pending_refs: 2,
            spill_dir: Some(tmp.path().join("tmp")),
            ..Default::default()
        };
        let (report, _) = import(&tmp.path().join("a"), &file, &options);
        assert_eq!(report.papers_new, 5);
        assert!(report.references_spilled > 0);
        return;
    }
    let filters: Vec<&String> = args.iter().skip(1).filter(|a| !a.starts_with('-')).collect();
    let exe = std::env::current_exe().expect("own path");
    for name in SCENARIOS {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let status =
            Command::new(&exe).env("CITECAST_INGEST_SCENARIO", name).status().expect("run the scenario");
        assert!(status.success(), "scenario {name} failed");
    }
}
