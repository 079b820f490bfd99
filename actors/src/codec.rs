//! The one place stored values are encoded and decoded.
//!
//! Every value starts with a schema-version byte followed by a bincode 2 payload.
//! bincode is pinned to 2.0.x (unmaintained upstream, RUSTSEC-2025-0141); keeping it
//! behind these two functions means swapping the format touches only this file, and the
//! version byte lets a later release migrate values written by this one.

use serde::{de::DeserializeOwned, Serialize};

/// Version of the value layout written by this build. Values of older versions are
/// rewritten at open by [`crate::migrate`]; see there for what each version changed.
pub const SCHEMA_VERSION: u8 = 2;

/// Decodes a value of an older schema version with that version's type (migrations only).
pub fn decode_version<T: DeserializeOwned>(bytes: &[u8], expected: u8) -> Result<T, CodecError> {
    let (&version, payload) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != expected {
        return Err(CodecError::UnknownVersion { found: version });
    }
    let (value, _) = bincode::serde::decode_from_slice(payload, config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    Ok(value)
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty value")]
    Empty,
    #[error("value written by schema version {found}, this build reads version {SCHEMA_VERSION}")]
    UnknownVersion { found: u8 },
    #[error("cannot encode value: {0}")]
    Encode(String),
    #[error("cannot decode value: {0}")]
    Decode(String),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![SCHEMA_VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, payload) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != SCHEMA_VERSION {
        return Err(CodecError::UnknownVersion { found: version });
    }
    let (value, _) = bincode::serde::decode_from_slice(payload, config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        id: String,
        n: Option<u32>,
        list: Vec<i32>,
    }

    #[test]
    fn round_trips_and_checks_version() {
        let v = Sample { id: "hep-th/9711200".into(), n: Some(3), list: vec![-1, 2] };
        let bytes = encode(&v).unwrap();
        assert_eq!(bytes[0], SCHEMA_VERSION);
        assert_eq!(decode::<Sample>(&bytes).unwrap(), v);

        let mut wrong = bytes.clone();
        wrong[0] = 99;
        assert!(matches!(decode::<Sample>(&wrong), Err(CodecError::UnknownVersion { found: 99 })));
        assert!(matches!(decode::<Sample>(&[]), Err(CodecError::Empty)));
        assert!(decode::<Sample>(&bytes[..bytes.len() - 2]).is_err());
    }
}
