//! Passwords of web accounts (issue 18): hashed with Argon2id (the `argon2` crate's
//! default parameters, m = 19 MiB, t = 2, p = 1) and a random 16-byte salt, stored as
//! the PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), which carries its
//! own parameters so they can be raised later without breaking stored hashes.
//!
//! Hashing takes tens of milliseconds on purpose: call it off the async workers.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest and longest passwords accepted (the upper bound keeps a hash cheap to refuse).
pub const MIN_CHARS: usize = 10;
pub const MAX_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The password breaks the policy; the message says how.
    #[error("{0}")]
    Weak(String),
    /// The stored hash cannot be read (a damaged record): the server's fault.
    #[error("the stored password hash is unreadable")]
    Unreadable,
    #[error("cannot hash the password: {0}")]
    Hashing(String),
}

/// Refuses passwords that are too short, too long, or the account's own e-mail address.
pub fn check_policy(password: &str, email: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_CHARS {
        return Err(PasswordError::Weak(format!("use at least {MIN_CHARS} characters")));
    }
    if password.len() > MAX_BYTES {
        return Err(PasswordError::Weak(format!("use at most {MAX_BYTES} bytes")));
    }
    if password.trim().eq_ignore_ascii_case(email.trim()) {
        return Err(PasswordError::Weak("do not use your e-mail address as the password".into()));
    }
    Ok(())
}

/// The PHC string of `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    let mut urandom =
        std::fs::File::open("/dev/urandom").map_err(|e| PasswordError::Hashing(e.to_string()))?;
    std::io::Read::read_exact(&mut urandom, &mut salt).map_err(|e| PasswordError::Hashing(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hashing(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// Whether `password` matches the stored PHC string (compared in constant time by argon2).
pub fn verify(password: &str, stored: &str) -> Result<bool, PasswordError> {
    if password.len() > MAX_BYTES {
        return Ok(false);
    }
    let parsed = PasswordHash::new(stored).map_err(|_| PasswordError::Unreadable)?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify_only_the_right_password() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify("correct horse battery", &a).unwrap());
        assert!(!verify("correct horse batterY", &a).unwrap());
        assert!(!verify(&"x".repeat(MAX_BYTES + 1), &a).unwrap());
        assert_eq!(verify("anything", "not a phc string"), Err(PasswordError::Unreadable));
    }

    #[test]
    fn the_policy_refuses_short_long_and_address_passwords() {
        assert!(check_policy("short", "a@example.org").is_err());
        assert!(check_policy(&"y".repeat(MAX_BYTES + 1), "a@example.org").is_err());
        assert!(check_policy("A@Example.org", "a@example.org").is_err());
        // Ten characters of any script count as ten.
        assert!(check_policy("ünïcödé✓✓✓", "a@example.org").is_ok());
        assert!(check_policy("a long enough passphrase", "a@example.org").is_ok());
    }
}
