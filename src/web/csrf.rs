//! CSRF protection for the web forms (issue 18): every form carries a token bound to the
//! visitor's session, and every state-changing request must come from our own origin.
//! Both checks, because either alone has gaps (a token leaked through a referrer, an
//! old browser that sends no `Origin`).
//!
//! A token is `base64url(nonce || HMAC-SHA256(key, session id || nonce))`: anyone can
//! read it, nobody without the server's key can make one for another session, and it is
//! compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const NONCE_BYTES: usize = 16;
const MAC_BYTES: usize = 32;

fn mac(key: &[u8], session: &str, nonce: &[u8]) -> [u8; MAC_BYTES] {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(session.as_bytes());
    m.update(&[0]);
    m.update(nonce);
    m.finalize().into_bytes().into()
}

/// A token for a form shown to `session`, with a nonce from the OS's random source.
pub fn token(key: &[u8], session: &str) -> std::io::Result<String> {
    let mut nonce = [0u8; NONCE_BYTES];
    let mut urandom = std::fs::File::open("/dev/urandom")?;
    std::io::Read::read_exact(&mut urandom, &mut nonce)?;
    Ok(token_with_nonce(key, session, nonce))
}

fn token_with_nonce(key: &[u8], session: &str, nonce: [u8; NONCE_BYTES]) -> String {
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(&mac(key, session, &nonce));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `presented` is a token this server made for `session`.
pub fn verify(key: &[u8], session: &str, presented: &str) -> bool {
    if presented.len() > 128 {
        return false;
    }
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(presented) else { return false };
    if bytes.len() != NONCE_BYTES + MAC_BYTES {
        return false;
    }
    let (nonce, given) = bytes.split_at(NONCE_BYTES);
    bool::from(mac(key, session, nonce).as_slice().ct_eq(given))
}

/// Whether a state-changing request comes from our own site: its `Origin` (or, without
/// one, its `Referer`) must be `scheme://host` of this server. A request with neither is
/// refused: every browser that submits a form sends at least one of them.
pub fn same_origin(origin: Option<&str>, referer: Option<&str>, ours: &str) -> bool {
    let ours = ours.trim_end_matches('/');
    match (origin, referer) {
        (Some(o), _) if o != "null" => o.trim_end_matches('/') == ours,
        (_, Some(r)) => r == ours || r.strip_prefix(ours).is_some_and(|rest| rest.starts_with('/')),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn tokens_verify_for_their_session_only_and_cannot_be_forged() {
        let t = token(KEY, "sess_a").unwrap();
        assert!(verify(KEY, "sess_a", &t));
        assert!(!verify(KEY, "sess_b", &t), "another session's token");
        assert!(!verify(b"another key", "sess_a", &t), "another server's token");
        assert_ne!(t, token(KEY, "sess_a").unwrap(), "a fresh nonce each time");
        // Tampering with any byte, truncating, garbage, empty.
        let mut bytes = URL_SAFE_NO_PAD.decode(&t).unwrap();
        bytes[20] ^= 1;
        assert!(!verify(KEY, "sess_a", &URL_SAFE_NO_PAD.encode(&bytes)));
        assert!(!verify(KEY, "sess_a", &t[..t.len() - 2]));
        for bad in ["", "!!!", "<script>", &"A".repeat(500)] {
            assert!(!verify(KEY, "sess_a", bad), "{bad}");
        }
        // A known token for a fixed nonce keeps its format stable.
        assert_eq!(token_with_nonce(KEY, "s", [0; 16]).len(), 64);
    }

    #[test]
    fn only_our_origin_may_post() {
        let ours = "https://citecast.example";
        assert!(same_origin(Some("https://citecast.example"), None, ours));
        assert!(same_origin(None, Some("https://citecast.example/billing"), ours));
        assert!(!same_origin(Some("https://evil.example"), Some("https://citecast.example/"), ours));
        assert!(!same_origin(Some("http://citecast.example"), None, ours), "scheme matters");
        assert!(!same_origin(None, Some("https://citecast.example.evil.example/x"), ours));
        assert!(!same_origin(Some("null"), None, ours), "sandboxed or privacy-stripped");
        assert!(!same_origin(None, None, ours));
    }
}
