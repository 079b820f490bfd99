//! Signatures of payment webhooks, in the scheme Stripe uses: the request carries
//! `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, with one
//! `v1` per secret the provider signs with (several while a secret is rotated). A request
//! is accepted when one `v1` matches one of our secrets and `t` lies within the
//! tolerance of now, so a captured request cannot be replayed later; replays within the
//! tolerance are stopped by the event ids the caller records.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far `t` may lie from now, either way.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request has no signature header")]
    Missing,
    #[error("the signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the signature is {age} s from now, beyond the {tolerance} s allowed")]
    Stale { age: i64, tolerance: i64 },
    #[error("no signature matches a configured secret")]
    Mismatch,
}

impl crate::error::Coded for SignatureError {
    fn code(&self) -> &'static str {
        "invalid_signature"
    }

    fn status(&self) -> u16 {
        400
    }
}

/// The `v1` value for `body` signed at `t` with `secret`: lower-case hex.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `header` (the `Stripe-Signature` value, `None` when absent) for `body` against
/// `secrets` at `now`; answers the signed timestamp.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&[u8]],
    now: i64,
    tolerance: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    if header.len() > 4096 {
        return Err(SignatureError::Malformed("longer than 4096 bytes"));
    }
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (key, value) =
            part.trim().split_once('=').ok_or(SignatureError::Malformed("a part is not key=value"))?;
        match key {
            "t" => {
                let parsed =
                    value.parse::<i64>().map_err(|_| SignatureError::Malformed("t is not a number"))?;
                if t.replace(parsed).is_some() {
                    return Err(SignatureError::Malformed("t appears twice"));
                }
            }
            "v1" => candidates.push(value),
            // Other schemes (v0, test-mode markers) are not ours to check.
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed("no t"))?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed("no v1 signature"));
    }
    let age = now - t;
    if age.abs() > tolerance {
        return Err(SignatureError::Stale { age, tolerance });
    }
    for secret in secrets {
        let expected = sign(secret, t, body);
        // Every candidate is compared in full and in constant time.
        let mut matched = false;
        for c in &candidates {
            matched |= bool::from(expected.as_bytes().ct_eq(c.as_bytes()));
        }
        if matched {
            return Ok(t);
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_343_355;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;

    fn header(secret: &[u8], t: i64) -> String {
        format!("t={t},v1={}", sign(secret, t, BODY))
    }

    #[test]
    fn a_valid_signature_passes_and_anything_else_is_refused() {
        let ok = header(b"whsec_a", NOW - 10);
        assert_eq!(verify(Some(&ok), BODY, &[b"whsec_a"], NOW, 300), Ok(NOW - 10));
        // Wrong secret, changed body.
        assert_eq!(verify(Some(&ok), BODY, &[b"whsec_b"], NOW, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify(Some(&ok), b"{}", &[b"whsec_a"], NOW, 300), Err(SignatureError::Mismatch));
        // Stale, or from the future beyond the tolerance.
        let old = header(b"whsec_a", NOW - 301);
        assert!(matches!(
            verify(Some(&old), BODY, &[b"whsec_a"], NOW, 300),
            Err(SignatureError::Stale { .. })
        ));
        let future = header(b"whsec_a", NOW + 301);
        assert!(matches!(
            verify(Some(&future), BODY, &[b"whsec_a"], NOW, 300),
            Err(SignatureError::Stale { .. })
        ));
        // Missing and malformed headers.
        assert_eq!(verify(None, BODY, &[b"whsec_a"], NOW, 300), Err(SignatureError::Missing));
        for bad in
            ["", "t=abc,v1=00", "v1=00", &format!("t={NOW}"), &format!("t={NOW},t={NOW},v1=00"), "garbage"]
        {
            assert!(
                matches!(verify(Some(bad), BODY, &[b"whsec_a"], NOW, 300), Err(SignatureError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn rotation_either_several_v1_values_or_several_secrets() {
        // The provider signs with old and new secrets while rotating: one v1 each.
        let both = format!("t={NOW},v1={},v1={}", sign(b"old", NOW, BODY), sign(b"new", NOW, BODY));
        assert!(verify(Some(&both), BODY, &[b"new"], NOW, 300).is_ok());
        assert!(verify(Some(&both), BODY, &[b"old"], NOW, 300).is_ok());
        // We accept the old and the new secret while we rotate ours.
        let new_only = header(b"new", NOW);
        assert!(verify(Some(&new_only), BODY, &[b"old", b"new"], NOW, 300).is_ok());
        assert_eq!(verify(Some(&new_only), BODY, &[b"old"], NOW, 300), Err(SignatureError::Mismatch));
        // v0 and unknown schemes are ignored, not trusted.
        let v0 = format!("t={NOW},v0={}", sign(b"new", NOW, BODY));
        assert!(matches!(verify(Some(&v0), BODY, &[b"new"], NOW, 300), Err(SignatureError::Malformed(_))));
    }

    #[test]
    fn the_signature_is_the_documented_hmac() {
        // Known answer, from Python: hmac.new(b"k", b"1.{}", hashlib.sha256).hexdigest()
        assert_eq!(sign(b"k", 1, b"{}"), "3dd49b2593d0f9a349e9e71c4bde3e2b862c2be4003fe9b4ba81332029310158");
    }
}
