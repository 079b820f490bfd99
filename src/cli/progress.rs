//! Progress of long imports: a bar on a terminal, log lines otherwise.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use citecast_actors::ingest::{Progress, ProgressFn};
use indicatif::{ProgressBar, ProgressStyle};

pub fn reporter() -> ProgressFn {
    if std::io::stderr().is_terminal() {
        bar()
    } else {
        log_lines()
    }
}

fn bar() -> ProgressFn {
    let current: Mutex<Option<(String, ProgressBar)>> = Mutex::new(None);
    Arc::new(move |p: &Progress| {
        let Ok(mut current) = current.lock() else { return };
        if current.as_ref().map(|(f, _)| f != &p.file).unwrap_or(true) {
            if let Some((_, old)) = current.take() {
                old.finish();
            }
            let bar = ProgressBar::new(p.bytes_total);
            bar.set_style(
                ProgressStyle::with_template("{msg:30!} [{bar:40}] {percent:>3}% {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_message(short_name(&p.file));
            *current = Some((p.file.clone(), bar));
        }
        if let Some((_, bar)) = current.as_ref() {
            bar.set_position(p.bytes_read.min(p.bytes_total));
            if p.bytes_read >= p.bytes_total {
                bar.finish();
            }
        }
    })
}

/// One line per file per 10% step.
fn log_lines() -> ProgressFn {
    let last: Mutex<(String, u64)> = Mutex::new((String::new(), u64::MAX));
    Arc::new(move |p: &Progress| {
        let Ok(mut last) = last.lock() else { return };
        let pct = (p.bytes_read * 100).checked_div(p.bytes_total).unwrap_or(100).min(100) / 10 * 10;
        if last.0 != p.file || last.1 != pct {
            tracing::info!(file = %short_name(&p.file), percent = pct, lines = p.lines, "loading");
            *last = (p.file.clone(), pct);
        }
    })
}

fn short_name(file: &str) -> String {
    std::path::Path::new(file)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.into())
}
