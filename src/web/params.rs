//! Query-string parsing that names the offending parameter in every error.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use citecast_actors::dates::{self, Day};

use crate::web::error::ApiError;

pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses `query`, rejecting parameters not in `allowed` and repeated ones.
    pub fn parse(query: &str, allowed: &[&str]) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::param("query", format!("malformed query string: {e}")))?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::param(
                    name,
                    format!("unknown parameter '{name}'; allowed: {}", allowed.join(", ")),
                ));
            }
            if pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(ApiError::param(name, format!("parameter '{name}' is given more than once")));
            }
        }
        Ok(Params { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// An integer in `[min, max]`, or `default` when absent.
    pub fn int(&self, name: &str, default: usize, min: usize, max: usize) -> Result<usize, ApiError> {
        let Some(v) = self.get(name) else { return Ok(default) };
        match v.trim().parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::param(
                name,
                format!("'{name}' must be an integer from {min} to {max}, got '{v}'"),
            )),
        }
    }

    pub fn date(&self, name: &str) -> Result<Option<Day>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => dates::parse(v).map(Some).ok_or_else(|| {
                ApiError::param(name, format!("'{name}' must be a date YYYY-MM-DD, got '{v}'"))
            }),
        }
    }

    pub fn cursor(&self) -> Result<Option<Vec<u8>>, ApiError> {
        match self.get("cursor") {
            None => Ok(None),
            Some(v) => URL_SAFE_NO_PAD
                .decode(v)
                .map(Some)
                .map_err(|_| ApiError::param("cursor", "'cursor' is not a cursor returned by this API")),
        }
    }
}

pub fn encode_cursor(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
