//! The operator's tables the economics need beside the billing store: marketing spend
//! (`econ_spend`) and costs (`econ_costs`), one entry per record, never edited in place
//! (a correction is another entry, negative if need be). The only code touching them.

use super::Entry;

#[derive(Debug, thiserror::Error)]
pub enum EconomicsError {
    #[error("{0}")]
    Invalid(String),
    #[error("the store failed: {0}")]
    Store(#[from] sled::Error),
    #[error("a stored entry is unreadable: {0}")]
    Corrupt(String),
    #[error("billing records are unreadable: {0}")]
    Billing(String),
}

impl crate::error::Coded for EconomicsError {
    fn code(&self) -> &'static str {
        match self {
            EconomicsError::Invalid(_) => "invalid_body",
            EconomicsError::Store(_) => "unavailable",
            EconomicsError::Corrupt(_) | EconomicsError::Billing(_) => "internal",
        }
    }

    fn status(&self) -> u16 {
        match self {
            EconomicsError::Invalid(_) => 400,
            EconomicsError::Store(_) => 503,
            EconomicsError::Corrupt(_) | EconomicsError::Billing(_) => 500,
        }
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, EconomicsError::Store(_)).then_some(5)
    }
}

/// Which table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Spend,
    Costs,
}

pub struct Ledgers {
    spend: sled::Tree,
    costs: sled::Tree,
    db: sled::Db,
}

impl Ledgers {
    pub fn open(db: &sled::Db) -> Result<Ledgers, EconomicsError> {
        Ok(Ledgers { spend: db.open_tree("econ_spend")?, costs: db.open_tree("econ_costs")?, db: db.clone() })
    }

    fn tree(&self, t: Table) -> &sled::Tree {
        match t {
            Table::Spend => &self.spend,
            Table::Costs => &self.costs,
        }
    }

    /// Records an amount for a month after checking it (`2026-11`, a label of 1 to 40
    /// letters, digits, spaces or - _ ., an amount of at most a hundred million).
    pub fn record(
        &self,
        t: Table,
        month: &str,
        amount_minor: i64,
        label: &str,
        now: i64,
    ) -> Result<Entry, EconomicsError> {
        if super::parse_month(month).is_none() {
            return Err(EconomicsError::Invalid(format!(
                "month must look like 2026-11, not '{}'",
                month.chars().take(40).collect::<String>()
            )));
        }
        let label = label.trim();
        if label.is_empty()
            || label.chars().count() > 40
            || !label.chars().all(|c| c.is_alphanumeric() || " -_.".contains(c))
        {
            return Err(EconomicsError::Invalid("label: 1 to 40 letters, digits, spaces or - _ .".into()));
        }
        if amount_minor.abs() > 10_000_000_000 {
            return Err(EconomicsError::Invalid("amount: at most 100,000,000.00".into()));
        }
        let e =
            Entry { month: month.trim().to_string(), amount_minor, label: label.to_string(), recorded: now };
        let id = self.db.generate_id()?;
        let bytes = serde_json::to_vec(&e).map_err(|x| EconomicsError::Corrupt(x.to_string()))?;
        self.tree(t).insert(id.to_be_bytes(), bytes)?;
        self.tree(t).flush()?;
        Ok(e)
    }

    pub fn all(&self, t: Table) -> Result<Vec<Entry>, EconomicsError> {
        self.tree(t)
            .iter()
            .values()
            .map(|v| serde_json::from_slice(&v?).map_err(|x| EconomicsError::Corrupt(x.to_string())))
            .collect()
    }
}

/// Parses an amount typed by a person: `1200`, `1200.5`, `1,200.50`, `-30` → minor units.
pub fn parse_amount(s: &str) -> Result<i64, EconomicsError> {
    let bad = || {
        EconomicsError::Invalid(format!(
            "'{}' is not an amount like 1200.50",
            s.chars().take(40).collect::<String>()
        ))
    };
    let t = s.trim().replace(',', "");
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, t),
    };
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    if whole.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 2
        || !frac.chars().all(|c| c.is_ascii_digit())
        || whole.len() > 12
    {
        return Err(bad());
    }
    let cents = whole.parse::<i64>().map_err(|_| bad())? * 100
        + format!("{frac:0<2}").parse::<i64>().map_err(|_| bad())?;
    Ok(if neg { -cents } else { cents })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_entries_are_checked() {
        assert_eq!(parse_amount("1,200.5").unwrap(), 120_050);
        assert_eq!(parse_amount("-30").unwrap(), -3_000);
        for bad in ["", "abc", "1.234", "1e5", "12.3.4", "<script>", "9999999999999"] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
        let db = sled::Config::new().temporary(true).open().unwrap();
        let l = Ledgers::open(&db).unwrap();
        l.record(Table::Spend, "2026-11", 50_000, "ads", 0).unwrap();
        assert!(l.record(Table::Spend, "2026-13", 1, "ads", 0).is_err());
        assert!(l.record(Table::Costs, "2026-11", 1, "'; DROP TABLE", 0).is_err());
        assert_eq!(l.all(Table::Spend).unwrap().len(), 1);
        assert!(l.all(Table::Costs).unwrap().is_empty());
    }
}
