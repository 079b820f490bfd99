//! Bulk forecasts as JSON Lines, shared by `POST /v1/forecasts/bulk` and
//! `citecast forecast --all`: reading the request's lines, grouping a chunk of them into
//! batches per mode, and writing one output line per paper (a forecast, or an error
//! naming the input line). A bad line is answered in place and never stops the rest.

use citecast_actors::forecast::service::{Forecast, ForecastError};
use citecast_actors::forecast::task::Mode;
use serde::{Deserialize, Serialize};

use crate::error::Coded;

/// Papers scored per batch (one message to the model actor, one feature matrix).
pub const CHUNK: usize = 1_000;

/// One paper to forecast: from an input line (`line`, 1-based) or from a collection walk
/// (`line: None`); `id` is the cleaned id, or why the line is refused.
#[derive(Debug, Clone)]
pub struct Item {
    pub line: Option<usize>,
    pub id: Result<String, LineError>,
    /// The line's own mode (`None`: the request's).
    pub mode: Option<Mode>,
}

/// Why an input line gets no forecast before any model sees it.
#[derive(Debug, Clone)]
pub struct LineError {
    /// The id, when the line had a readable one.
    pub id: Option<String>,
    pub message: String,
}

/// One input line.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkLine {
    /// A stored paper's id (canonical or alias).
    pub id: String,
    /// `at_publication` or `early`; default: the `mode` query parameter's.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(at_publication|early)$")]
    pub mode: Option<String>,
}

/// Whether a body holds no lines at all (then the query says which papers).
pub fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// The items of a JSON Lines body, one per non-blank line, numbered from 1.
pub fn parse_lines(body: &[u8]) -> Vec<Item> {
    body.split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !is_blank(l))
        .map(|(i, l)| parse_line(i + 1, l))
        .collect()
}

fn parse_line(line: usize, bytes: &[u8]) -> Item {
    let refuse = |id: Option<String>, message: String| Item {
        line: Some(line),
        id: Err(LineError { id, message }),
        mode: None,
    };
    let parsed: BulkLine = match serde_json::from_slice(bytes) {
        Ok(p) => p,
        Err(e) => {
            return refuse(None, format!("line {line} is not an object {{\"id\": ..., \"mode\": ...}}: {e}"))
        }
    };
    let mode = match parsed.mode.as_deref() {
        None => None,
        Some(m) => match Mode::parse(m) {
            Some(m) => Some(m),
            None => return refuse(None, format!("line {line}: 'mode' must be at_publication or early")),
        },
    };
    match crate::papers::clean_id(&parsed.id) {
        Ok(id) => Item { line: Some(line), id: Ok(id), mode },
        // Never echoed back: it may be anything.
        Err(_) => refuse(
            None,
            format!(
                "line {line}: 'id' is not a paper id: ids are 1 to 128 characters without control characters"
            ),
        ),
    }
}

/// The papers of a chunk asked in one mode, and where their answers go.
pub struct Group {
    pub mode: Mode,
    pub ids: Vec<String>,
    slots: Vec<usize>,
}

/// A chunk's readable items grouped by mode (`default` for items without their own), in
/// order of first appearance.
pub fn groups(chunk: &[Item], default: Mode) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for (i, item) in chunk.iter().enumerate() {
        let Ok(id) = &item.id else { continue };
        let mode = item.mode.unwrap_or(default);
        match out.iter_mut().find(|g| g.mode == mode) {
            Some(g) => {
                g.ids.push(id.clone());
                g.slots.push(i);
            }
            None => out.push(Group { mode, ids: vec![id.clone()], slots: vec![i] }),
        }
    }
    out
}

/// Answers of one group: one result per id, or a refusal of the whole group.
pub type Answers = Result<Vec<Result<Forecast, ForecastError>>, ForecastError>;

/// The output lines of a chunk, in input order: each forecast (as shown to people) or
/// error. `served` sees every forecast (for the usage metrics).
pub fn render(
    chunk: &[Item],
    groups: Vec<Group>,
    answers: Vec<Answers>,
    served: &mut dyn FnMut(&Forecast),
) -> Vec<u8> {
    let mut per_item: Vec<Option<Result<Forecast, ForecastError>>> = chunk.iter().map(|_| None).collect();
    for (g, a) in groups.into_iter().zip(answers) {
        match a {
            Ok(results) => {
                for (slot, r) in g.slots.into_iter().zip(results) {
                    per_item[slot] = Some(r);
                }
            }
            Err(e) => {
                for slot in g.slots {
                    per_item[slot] = Some(Err(e.clone()));
                }
            }
        }
    }
    let mut out = Vec::with_capacity(chunk.len() * 1_200);
    for (item, answer) in chunk.iter().zip(per_item) {
        match (&item.id, answer) {
            (Err(e), _) => error_line(&mut out, item.line, e.id.as_deref(), "invalid_body", &e.message),
            (Ok(_), Some(Ok(f))) => {
                served(&f);
                forecast_line(&mut out, item.line, f);
            }
            (Ok(id), Some(Err(e))) => error_line(&mut out, item.line, Some(id), e.code(), &e.message()),
            (Ok(id), None) => error_line(&mut out, item.line, Some(id), "internal", "no forecast returned"),
        }
    }
    out
}

#[derive(Serialize)]
struct ForecastOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(flatten)]
    forecast: Forecast,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

fn forecast_line(out: &mut Vec<u8>, line: Option<usize>, forecast: Forecast) {
    let v = ForecastOut { line, forecast: forecast.for_people() };
    // A forecast always serialises (strings and finite or null numbers).
    if serde_json::to_writer(&mut *out, &v).is_ok() {
        out.push(b'\n');
    }
}

fn error_line(out: &mut Vec<u8>, line: Option<usize>, id: Option<&str>, code: &str, message: &str) {
    let v = ErrorOut { line, id, error: ErrorBody { code, message } };
    if serde_json::to_writer(&mut *out, &v).is_ok() {
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_and_bad_ones_answered_in_place() {
        let body = b"{\"id\": \"a/1\"}\n\nnot json\n{\"id\": \"b/2\", \"mode\": \"early\"}\n{\"id\": \"c\", \"mode\": \"late\"}\n{\"id\": \"\"}\n";
        let items = parse_lines(body);
        assert_eq!(items.iter().map(|i| i.line.unwrap()).collect::<Vec<_>>(), vec![1, 3, 4, 5, 6]);
        assert!(items[0].id.is_ok() && items[0].mode.is_none());
        assert!(items[1].id.as_ref().unwrap_err().message.contains("line 3"));
        assert_eq!(items[2].mode, Some(Mode::Early));
        assert!(items[3].id.is_err() && items[4].id.is_err());
        let g = groups(&items, Mode::AtPublication);
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].mode, g[0].ids.clone()), (Mode::AtPublication, vec!["a/1".to_string()]));
        let answers = vec![
            Ok(vec![Err(ForecastError::UnknownPaper("a/1".into()))]),
            Err(ForecastError::NoModel("early".into())),
        ];
        let out = String::from_utf8(render(&items, g, answers, &mut |_| {})).unwrap();
        let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0]["error"]["code"], "not_found");
        assert_eq!(lines[0]["line"], 1);
        assert_eq!(lines[1]["error"]["code"], "invalid_body");
        assert_eq!(lines[2]["error"]["code"], "no_model");
        assert_eq!(lines[2]["id"], "b/2");
        assert_eq!(lines[4]["line"], 6);
        assert!(is_blank(b" \n\r\n") && !is_blank(b"{}"));
    }
}
