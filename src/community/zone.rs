//! The reader's time zone for pages that show times (contest deadlines, events). Pages
//! have no scripts, so the zone is the reader's choice: `?tz=Europe/Berlin` on any such
//! page, remembered in the session; UTC until chosen. Times are stored as unix seconds
//! and only shown in a zone.

use actix_session::Session;

const SESSION_KEY: &str = "tz";

/// A time zone to show times in.
#[derive(Clone)]
pub struct Zone {
    pub name: String,
    tz: jiff::tz::TimeZone,
}

impl Zone {
    pub fn utc() -> Zone {
        Zone { name: "UTC".into(), tz: jiff::tz::TimeZone::UTC }
    }

    /// `UTC`, an IANA name (`America/New_York`), or a fixed offset (`+05:30`).
    pub fn parse(name: &str) -> Option<Zone> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 {
            return None;
        }
        if name.eq_ignore_ascii_case("utc") {
            return Some(Zone::utc());
        }
        if name.starts_with('+') || name.starts_with('-') {
            let (sign, rest) = name.split_at(1);
            let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
            let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
            if !(0..=14).contains(&h) || !(0..60).contains(&m) {
                return None;
            }
            let secs = (h * 3600 + m * 60) * if sign == "-" { -1 } else { 1 };
            let offset = jiff::tz::Offset::from_seconds(secs).ok()?;
            return Some(Zone { name: name.to_string(), tz: jiff::tz::TimeZone::fixed(offset) });
        }
        // Only names built from the characters IANA uses reach the database lookup.
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c)) {
            return None;
        }
        jiff::tz::TimeZone::get(name).ok().map(|tz| Zone { name: name.to_string(), tz })
    }

    /// `2001-04-01 14:00 (America/New_York)`.
    pub fn show(&self, secs: i64) -> String {
        match jiff::Timestamp::from_second(secs) {
            Ok(t) => format!("{} ({})", t.to_zoned(self.tz.clone()).strftime("%Y-%m-%d %H:%M"), self.name),
            Err(_) => citecast_actors::dates::rfc3339(secs),
        }
    }
}

/// The zone this reader asked for (`tz` in the query, then remembered), else UTC.
pub fn reader_zone(query: &str, session: &Session) -> Zone {
    let asked = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap_or_default()
        .into_iter()
        .find(|(k, _)| k == "tz")
        .map(|(_, v)| v);
    if let Some(z) = asked.as_deref().and_then(Zone::parse) {
        let _ = session.insert(SESSION_KEY, &z.name);
        return z;
    }
    session.get::<String>(SESSION_KEY).ok().flatten().and_then(|n| Zone::parse(&n)).unwrap_or_else(Zone::utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_show_local_time() {
        // 2001-04-01 12:00 UTC.
        let t = 986_126_400;
        assert_eq!(Zone::utc().show(t), "2001-04-01 12:00 (UTC)");
        assert_eq!(Zone::parse("+05:30").unwrap().show(t), "2001-04-01 17:30 (+05:30)");
        assert_eq!(Zone::parse("-03").unwrap().show(t), "2001-04-01 09:00 (-03)");
        for bad in ["", "Mars/Olympus", "+99", "../etc/passwd", "<script>"] {
            assert!(Zone::parse(bad).is_none(), "{bad}");
        }
        if let Some(ny) = Zone::parse("America/New_York") {
            // EST until 2001-04-01 07:00 UTC, then EDT (UTC-4).
            assert_eq!(ny.show(t), "2001-04-01 08:00 (America/New_York)");
        }
    }
}
