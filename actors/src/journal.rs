//! Append-only records beside the corpus: the forecast log, the audit log, and the
//! archive that old forecast and usage records move into.
//!
//! | tree           | key                              | value                               |
//! |----------------|----------------------------------|-------------------------------------|
//! | `forecast_log` | unix secs BE · sequence BE       | [`ForecastRecord`]                  |
//! | `audit`        | sequence BE                      | [`AuditEntry`]                      |
//! | `archive`      | `forecasts/YYYY-MM-DD`, `usage/YYYY-MM` | gzip of a codec-encoded chunk |
//! | `usage`        | principal · 0 · day BE           | u64 BE (written by the limiter)     |
//!
//! The audit log has no update or delete here, and none is exposed anywhere: entries
//! are only appended and read. Archiving writes the month chunk first and deletes the
//! live records after; chunk entries carry their live key, so a run interrupted between
//! the two steps repeats without duplicating anything.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::dates::{self, Day};
use crate::records::ForecastRecord;
use crate::store::{Result, StoreError};

/// One admin or billing action: who did what to which object, and the state before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number, assigned on append.
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    /// `cli` (an operator on the server's machine), `admin-api`, or a customer id.
    pub actor: String,
    /// Dotted verb, e.g. `customer.tier`, `key.revoke`, `model.promote`.
    pub action: String,
    pub target: String,
    /// JSON text of the object before and after (absent when there was none).
    pub before: Option<String>,
    pub after: Option<String>,
}

/// What an archive run moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveOutcome {
    pub forecasts_moved: u64,
    pub usage_moved: u64,
    /// Month chunks written or extended.
    pub chunks: Vec<String>,
}

/// One day's request count of one principal, live or archived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageDay {
    pub principal: String,
    pub day: String,
    pub requests: u64,
}

#[derive(Clone)]
pub struct Journal {
    db: sled::Db,
    forecasts: sled::Tree,
    audit: sled::Tree,
    archive: sled::Tree,
    usage: sled::Tree,
}

type ForecastChunk = Vec<(Vec<u8>, ForecastRecord)>;
type UsageChunk = Vec<(String, Day, u64)>;

/// Forecast chunks hold one day: a daily archive run then writes a new chunk instead of
/// rewriting a month's (forecasts are the large record kind).
fn day_of_secs(secs: i64) -> String {
    dates::format(dates::day_of_secs(secs))
}

fn month_of_day(day: Day) -> String {
    dates::format(day)[..7].to_string()
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).and_then(|_| enc.finish()).map_err(|e| StoreError::Archive(e.to_string()))
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| StoreError::Archive(e.to_string()))?;
    Ok(out)
}

impl Journal {
    pub fn open(db: &sled::Db) -> Result<Journal> {
        Ok(Journal {
            db: db.clone(),
            forecasts: db.open_tree("forecast_log")?,
            audit: db.open_tree("audit")?,
            archive: db.open_tree("archive")?,
            usage: db.open_tree("usage")?,
        })
    }

    pub fn append_forecasts(&self, records: &[ForecastRecord]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for r in records {
            let mut key = (r.at as u64).to_be_bytes().to_vec();
            key.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
            batch.insert(key, codec::encode(r)?);
        }
        self.forecasts.apply_batch(batch)?;
        Ok(())
    }

    /// Forecast records with `from <= at < to` (unix secs), archived ones first, oldest
    /// first, at most `limit`.
    pub fn forecasts_between(&self, from: i64, to: i64, limit: usize) -> Result<Vec<ForecastRecord>> {
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        // Month names compare as text only while years have four digits.
        const YEAR_9999_END: i64 = 253_402_300_799;
        let (first, last) =
            (day_of_secs(from.clamp(0, YEAR_9999_END)), day_of_secs((to - 1).clamp(0, YEAR_9999_END)));
        for kv in self
            .archive
            .range(format!("forecasts/{first}").into_bytes()..=format!("forecasts/{last}").into_bytes())
        {
            let (_, v) = kv?;
            let chunk: ForecastChunk = codec::decode(&gunzip(&v)?)?;
            out.extend(chunk.into_iter().map(|(_, r)| r).filter(|r| r.at >= from && r.at < to));
            if out.len() >= limit {
                out.truncate(limit);
                return Ok(out);
            }
        }
        let range = (from.max(0) as u64).to_be_bytes()..(to.max(0) as u64).to_be_bytes();
        for kv in self.forecasts.range(range) {
            out.push(codec::decode(&kv?.1)?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    pub fn live_forecast_count(&self) -> usize {
        self.forecasts.len()
    }

    pub fn append_audit(&self, mut entry: AuditEntry) -> Result<AuditEntry> {
        entry.seq = self.db.generate_id()?;
        self.audit.insert(entry.seq.to_be_bytes(), codec::encode(&entry)?)?;
        // Audit entries are few and must survive a crash right after the action.
        self.audit.flush()?;
        Ok(entry)
    }

    /// Entries after `after` (a sequence number), oldest first, at most `limit`.
    pub fn audit_entries(&self, after: Option<u64>, limit: usize) -> Result<Vec<AuditEntry>> {
        let start = after.map(|a| a.saturating_add(1)).unwrap_or(0);
        self.audit.range(start.to_be_bytes()..).take(limit).map(|kv| Ok(codec::decode(&kv?.1)?)).collect()
    }

    /// Moves forecast records older than `forecasts_before` (unix secs) and usage days
    /// before `usage_before` into gzip chunks (a day of forecasts, a month of usage), at most `budget` records per call.
    pub fn archive(&self, forecasts_before: i64, usage_before: Day, budget: usize) -> Result<ArchiveOutcome> {
        let mut outcome = ArchiveOutcome::default();
        let mut by_day: BTreeMap<String, ForecastChunk> = BTreeMap::new();
        for kv in self.forecasts.range(..(forecasts_before.max(0) as u64).to_be_bytes()).take(budget) {
            let (k, v) = kv?;
            let r: ForecastRecord = codec::decode(&v)?;
            by_day.entry(day_of_secs(r.at)).or_default().push((k.to_vec(), r));
        }
        for (day, records) in by_day {
            let key = format!("forecasts/{day}");
            if let Some(old) = self.archive.get(&key)? {
                let mut merged: ForecastChunk = codec::decode(&gunzip(&old)?)?;
                // A set, not a scan per record: a day's chunk grows by every daily run.
                let have: std::collections::HashSet<&[u8]> =
                    merged.iter().map(|(k, _)| k.as_slice()).collect();
                let fresh: ForecastChunk =
                    records.iter().filter(|(k, _)| !have.contains(k.as_slice())).cloned().collect();
                merged.extend(fresh);
                self.archive.insert(key.as_bytes(), gzip(&codec::encode(&merged)?)?)?;
            } else {
                self.archive.insert(key.as_bytes(), gzip(&codec::encode(&records)?)?)?;
            }
            self.archive.flush()?;
            let mut batch = sled::Batch::default();
            for (k, _) in &records {
                batch.remove(k.as_slice());
            }
            self.forecasts.apply_batch(batch)?;
            outcome.forecasts_moved += records.len() as u64;
            outcome.chunks.push(key);
        }
        let mut usage_by_month: BTreeMap<String, (UsageChunk, Vec<sled::IVec>)> = BTreeMap::new();
        let mut seen = 0;
        for kv in self.usage.iter() {
            let (k, v) = kv?;
            let Some((principal, day)) = split_usage_key(&k) else { continue };
            if day >= usage_before {
                continue;
            }
            seen += 1;
            if seen > budget {
                break;
            }
            let count = v.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
            let e = usage_by_month.entry(month_of_day(day)).or_default();
            e.0.push((principal, day, count));
            e.1.push(k);
        }
        for (month, (mut days, keys)) in usage_by_month {
            let key = format!("usage/{month}");
            let mut merged: UsageChunk = match self.archive.get(&key)? {
                Some(old) => codec::decode(&gunzip(&old)?)?,
                None => Vec::new(),
            };
            let have: std::collections::HashSet<(&str, Day)> =
                merged.iter().map(|(p, d, _)| (p.as_str(), *d)).collect();
            days.retain(|(p, d, _)| !have.contains(&(p.as_str(), *d)));
            merged.extend(days);
            self.archive.insert(key.as_bytes(), gzip(&codec::encode(&merged)?)?)?;
            self.archive.flush()?;
            let mut batch = sled::Batch::default();
            for k in &keys {
                batch.remove(k);
            }
            self.usage.apply_batch(batch)?;
            outcome.usage_moved += keys.len() as u64;
            outcome.chunks.push(key);
        }
        Ok(outcome)
    }

    /// Daily request counts of `principal` between two days (inclusive), archived and live.
    pub fn usage_between(&self, principal: &str, from: Day, to: Day) -> Result<Vec<UsageDay>> {
        let mut days: BTreeMap<Day, u64> = BTreeMap::new();
        if from > to {
            return Ok(Vec::new());
        }
        let (first, last) = (month_of_day(from), month_of_day(to));
        for kv in
            self.archive.range(format!("usage/{first}").into_bytes()..=format!("usage/{last}").into_bytes())
        {
            let chunk: UsageChunk = codec::decode(&gunzip(&kv?.1)?)?;
            for (p, d, n) in chunk {
                if p == principal && (from..=to).contains(&d) {
                    days.insert(d, n);
                }
            }
        }
        let mut prefix = principal.as_bytes().to_vec();
        prefix.push(0);
        for kv in self.usage.scan_prefix(&prefix) {
            let (k, v) = kv?;
            if let Some((_, d)) = split_usage_key(&k) {
                if (from..=to).contains(&d) {
                    days.insert(d, v.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0));
                }
            }
        }
        Ok(days
            .into_iter()
            .map(|(d, n)| UsageDay { principal: principal.to_string(), day: dates::format(d), requests: n })
            .collect())
    }

    pub fn archive_chunks(&self) -> Result<Vec<(String, u64)>> {
        self.archive
            .iter()
            .map(|kv| {
                kv.map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v.len() as u64))
                    .map_err(Into::into)
            })
            .collect()
    }
}

fn split_usage_key(k: &[u8]) -> Option<(String, Day)> {
    // The day's own bytes may hold zeros: the separator is at a fixed distance from the end.
    let zero = k.len().checked_sub(5).filter(|&z| k[z] == 0)?;
    let day = Day::from_be_bytes(k[zero + 1..].try_into().ok()?);
    Some((String::from_utf8_lossy(&k[..zero]).into_owned(), day))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at: i64, paper: &str) -> ForecastRecord {
        ForecastRecord {
            at,
            paper_id: paper.into(),
            mode: "early".into(),
            model_version: "m1".into(),
            probability: 0.25,
            caller: Some("cus_1".into()),
            rollout: None,
            arm: None,
            shadow_version: None,
            shadow_probability: None,
        }
    }

    fn usage_key(p: &str, day: Day) -> Vec<u8> {
        let mut k = p.as_bytes().to_vec();
        k.push(0);
        k.extend_from_slice(&day.to_be_bytes());
        k
    }

    #[test]
    fn archived_records_stay_queryable_and_rerunning_duplicates_nothing() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let j = Journal::open(&db).unwrap();
        let jan = 1_767_225_600; // 2026-01-01
        let mar = jan + 59 * 86_400;
        j.append_forecasts(&[record(jan + 10, "a"), record(jan + 20, "b"), record(mar, "c")]).unwrap();
        let d0 = dates::parse("2026-01-05").unwrap();
        for (p, d, n) in [("key_1", d0, 7u64), ("key_1", d0 + 1, 3), ("key_1", d0 + 70, 9), ("key_2", d0, 1)]
        {
            db.open_tree("usage").unwrap().insert(usage_key(p, d), &n.to_be_bytes()).unwrap();
        }
        let before = j.forecasts_between(0, i64::MAX, 100).unwrap();
        let out = j.archive(mar, d0 + 60, 1000).unwrap();
        assert_eq!((out.forecasts_moved, out.usage_moved), (2, 3));
        assert_eq!(j.live_forecast_count(), 1);
        assert_eq!(j.forecasts_between(0, i64::MAX, 100).unwrap(), before);
        assert_eq!(j.forecasts_between(jan + 15, jan + 86_400, 100).unwrap(), vec![record(jan + 20, "b")]);
        let usage = j.usage_between("key_1", d0, d0 + 100).unwrap();
        assert_eq!(usage.iter().map(|u| u.requests).collect::<Vec<_>>(), vec![7, 3, 9]);
        assert_eq!(usage[0].day, "2026-01-05");

        // A run interrupted after writing its chunk left a record live: the next run must
        // not archive it twice.
        let chunk: ForecastChunk =
            codec::decode(&gunzip(&j.archive.get("forecasts/2026-01-01").unwrap().unwrap()).unwrap())
                .unwrap();
        let (k, r) = chunk[0].clone();
        j.forecasts.insert(k, codec::encode(&r).unwrap()).unwrap();
        assert_eq!(j.archive(mar, d0 + 60, 1000).unwrap().forecasts_moved, 1);
        assert_eq!(j.live_forecast_count(), 1);
        assert_eq!(j.forecasts_between(0, i64::MAX, 100).unwrap(), before);
    }

    #[test]
    fn audit_is_append_only_and_ordered() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let j = Journal::open(&db).unwrap();
        let e = |action: &str| AuditEntry {
            seq: 0,
            at: 5,
            actor: "cli".into(),
            action: action.into(),
            target: "cus_1".into(),
            before: Some("{\"tier\":\"free\"}".into()),
            after: Some("{\"tier\":\"pro\"}".into()),
        };
        let a = j.append_audit(e("customer.tier")).unwrap();
        let b = j.append_audit(e("key.revoke")).unwrap();
        assert!(b.seq > a.seq);
        let all = j.audit_entries(None, 10).unwrap();
        assert_eq!(
            all.iter().map(|x| x.action.as_str()).collect::<Vec<_>>(),
            ["customer.tier", "key.revoke"]
        );
        assert_eq!(j.audit_entries(Some(a.seq), 10).unwrap(), vec![b]);
    }
}
