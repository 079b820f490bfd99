//! Events: challenges, discussions and the like that an operator announces, plus every
//! open contest's deadline; listed on `/events` in the reader's zone and served as an
//! iCalendar feed (`/events.ics`, times in UTC as RFC 5545 wants them). After an event,
//! its recording and notes are linked from it.

use serde::{Deserialize, Serialize};

use super::CommunityError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Challenge,
    Discussion,
    ContestDeadline,
    Other,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "challenge" => Some(Kind::Challenge),
            "discussion" => Some(Kind::Discussion),
            "contest_deadline" => Some(Kind::ContestDeadline),
            "other" => Some(Kind::Other),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Challenge => "Challenge",
            Kind::Discussion => "Discussion",
            Kind::ContestDeadline => "Contest deadline",
            Kind::Other => "Event",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub kind: Kind,
    pub title: String,
    /// Markdown.
    #[serde(default)]
    pub description: String,
    /// Unix seconds.
    pub starts: i64,
    pub ends: Option<i64>,
    /// Where it happens or what it is about: a site path or an http(s) URL.
    #[serde(default)]
    pub link: Option<String>,
    /// Linked after the event.
    #[serde(default)]
    pub recording: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    pub created: i64,
}

/// A link operators may attach: a site path or an http(s) URL (never `javascript:`).
pub fn check_link(field: &str, link: &str) -> Result<(), CommunityError> {
    let ok = (link.starts_with('/') && !link.starts_with("//"))
        || link.starts_with("https://")
        || link.starts_with("http://");
    if ok && link.len() <= 2000 && !link.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err(CommunityError::Invalid(format!("'{field}' must be a site path (/...) or an http(s) URL")))
    }
}

/// Escapes text for an iCalendar value (RFC 5545 3.3.11).
fn ics_text(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace("\r\n", "\\n")
        .replace(['\n', '\r'], "\\n")
}

/// Folds a content line at 75 octets (RFC 5545 3.1), never inside a character.
fn fold(line: &str) -> String {
    let mut out = String::new();
    let mut width = 0;
    for ch in line.chars() {
        let n = ch.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(ch);
        width += n;
    }
    out.push_str("\r\n");
    out
}

fn ics_time(secs: i64) -> String {
    let (d, s) = (citecast_actors::dates::day_of_secs(secs), secs.rem_euclid(86_400));
    let (y, m, day) = citecast_actors::dates::to_ymd(d);
    format!("{y:04}{m:02}{day:02}T{:02}{:02}{:02}Z", s / 3600, (s % 3600) / 60, s % 60)
}

/// The iCalendar feed of `events`; links made absolute with `base_url`.
pub fn ics(events: &[Event], base_url: &str, host: &str, now: i64) -> String {
    let absolute = |l: &str| {
        if l.starts_with('/') {
            format!("{}{l}", base_url.trim_end_matches('/'))
        } else {
            l.to_string()
        }
    };
    let mut out = String::new();
    for line in [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//citecast//events//EN",
        "CALSCALE:GREGORIAN",
        "X-WR-CALNAME:citecast events",
    ] {
        out.push_str(&fold(line));
    }
    for e in events {
        let mut description = e.description.clone();
        for (label, link) in [("Recording", &e.recording), ("Notes", &e.notes)] {
            if let Some(l) = link {
                description.push_str(&format!("\n{label}: {}", absolute(l)));
            }
        }
        let mut lines = vec![
            "BEGIN:VEVENT".to_string(),
            format!("UID:{}@{}", e.id, host),
            format!("DTSTAMP:{}", ics_time(now)),
            format!("DTSTART:{}", ics_time(e.starts)),
        ];
        if let Some(end) = e.ends {
            lines.push(format!("DTEND:{}", ics_time(end)));
        }
        lines.push(format!("SUMMARY:{}", ics_text(&format!("{}: {}", e.kind.label(), e.title))));
        if !description.trim().is_empty() {
            lines.push(format!("DESCRIPTION:{}", ics_text(description.trim())));
        }
        if let Some(l) = &e.link {
            lines.push(format!("URL:{}", absolute(l)));
        }
        lines.push("END:VEVENT".into());
        for l in lines {
            out.push_str(&fold(&l));
        }
    }
    out.push_str(&fold("END:VCALENDAR"));
    out
}

/// Operator events and open contests' deadlines together, soonest first.
pub fn all_events(db: &sled::Db, now: i64) -> Result<Vec<Event>, CommunityError> {
    let mut events = super::store::Community::open(db)?.events()?;
    let contests =
        crate::contests::open_contests(db, now).map_err(|e| CommunityError::Invalid(e.to_string()))?;
    for c in contests {
        events.push(Event {
            id: format!("contest-{}", c.id),
            kind: Kind::ContestDeadline,
            title: format!("Picks lock in \"{}\"", c.title),
            description: format!("Enter before the deadline: {}", c.target.describe(c.pick_limit)),
            starts: c.deadline,
            ends: None,
            link: Some(c.path()),
            recording: None,
            notes: None,
            created: c.created,
        });
    }
    events.sort_by(|a, b| a.starts.cmp(&b.starts).then(a.id.cmp(&b.id)));
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_is_valid_icalendar() {
        let e = Event {
            id: "ev1".into(),
            kind: Kind::Discussion,
            title: "Strings; branes, and more".into(),
            description: "Line one\nline two".into(),
            starts: 986_126_400,
            ends: Some(986_130_000),
            link: Some("/papers/hep-th/9711200".into()),
            recording: Some("https://video.example/1".into()),
            notes: None,
            created: 0,
        };
        let feed = ics(&[e], "http://h:1/", "h", 986_000_000);
        assert!(feed.starts_with("BEGIN:VCALENDAR\r\n") && feed.ends_with("END:VCALENDAR\r\n"));
        assert!(feed.contains("DTSTART:20010401T120000Z\r\n") && feed.contains("DTEND:20010401T130000Z\r\n"));
        assert!(feed.contains("SUMMARY:Discussion: Strings\\; branes\\, and more\r\n"), "{feed}");
        assert!(feed.contains("URL:http://h:1/papers/hep-th/9711200\r\n"));
        assert!(
            feed.contains("Recording: https://video.example/1")
                || feed.contains("Recording: https://video.ex")
        );
        for line in feed.split("\r\n") {
            assert!(line.len() <= 75, "{line}");
        }
        assert!(check_link("link", "javascript:alert(1)").is_err());
        assert!(check_link("link", "//evil.example").is_err());
        assert!(check_link("link", "/events").is_ok());
    }
}
