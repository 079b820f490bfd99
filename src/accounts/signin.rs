//! Signing up, confirming, signing in and resetting a password on the web, as plain
//! logic over the stores (no HTTP): the pages in [`super::page`] call these on a
//! blocking thread (Argon2id takes tens of milliseconds on purpose) and put the answers
//! in words.
//!
//! A sign-up makes nothing but a single-use confirmation token: the customer, its login
//! and its first API key are made when the address is confirmed, so an address nobody
//! confirms holds nothing. Answers never tell whether an address has an account: a
//! sign-up with a taken address mails its owner instead, and a sign-in with an unknown
//! address costs the same hashing as a wrong password.

use super::password::{self, PasswordError};
use super::store::{Login, Logins, TokenGrant};
use super::{AccountError, AccountStore, Customer, NewKey};

/// A confirmation link works this long.
pub const CONFIRM_TTL_SECS: i64 = 48 * 3600;
/// A password-reset link works this long.
pub const RESET_TTL_SECS: i64 = 3600;

/// A field the person must correct, in words for the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SigninError {
    #[error("{}", .0.message)]
    Field(FieldError),
    /// The e-mail address or the password is wrong (never which).
    #[error("the e-mail address or the password is wrong")]
    WrongCredentials,
    /// The link is unknown, used or expired.
    #[error("this link is no longer valid")]
    BadToken,
    #[error(transparent)]
    Store(#[from] AccountError),
    #[error(transparent)]
    Password(PasswordError),
}

fn field(field: &'static str, message: impl Into<String>) -> SigninError {
    SigninError::Field(FieldError { field, message: message.into() })
}

impl From<PasswordError> for SigninError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Weak(m) => field("password", format!("Choose another password: {m}.")),
            other => SigninError::Password(other),
        }
    }
}

/// A name as people type it: trimmed, 1 to 200 characters, no control characters.
pub fn clean_name(name: &str) -> Result<String, SigninError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(field("name", "Enter your name or your organisation's."));
    }
    if name.chars().count() > 200 {
        return Err(field("name", "Use at most 200 characters for the name."));
    }
    if name.chars().any(char::is_control) {
        return Err(field("name", "The name may not contain line breaks or control characters."));
    }
    Ok(name.to_string())
}

/// An address as mail accepts it: one `@`, a dotted domain, no spaces, quotes, angle
/// brackets or control characters (they could split a mail header), at most 254 bytes.
pub fn clean_email(email: &str) -> Result<String, SigninError> {
    let email = email.trim();
    let bad = || field("email", "Enter an e-mail address such as ada@example.org.");
    if email.is_empty() || email.len() > 254 {
        return Err(bad());
    }
    if email.chars().any(|c| c.is_control() || c.is_whitespace() || "<>\"(),;:\\[]".contains(c)) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(bad());
    }
    Ok(email.to_string())
}

/// What a sign-up did; the page says the same in both cases.
#[derive(Debug)]
pub enum SignupOutcome {
    /// A new address: mail it this confirmation token.
    Confirm { email: String, token: String },
    /// The address already has an account: mail its owner a sign-in reminder instead.
    AlreadyRegistered { email: String },
}

/// Checks a sign-up form and issues its confirmation token; stores nothing else.
pub fn signup(
    logins: &Logins,
    name: &str,
    email: &str,
    password_text: &str,
    plan: Option<&str>,
    now: i64,
) -> Result<SignupOutcome, SigninError> {
    let name = clean_name(name)?;
    let email = clean_email(email)?;
    password::check_policy(password_text, &email)?;
    if logins.customer_id_by_email(&email)?.is_some() {
        return Ok(SignupOutcome::AlreadyRegistered { email });
    }
    let password_hash = password::hash(password_text)?;
    let grant = TokenGrant::Confirm {
        name,
        email: email.clone(),
        password_hash,
        plan: plan.map(str::to_string),
        signed_up: now,
    };
    let token = logins.issue_token(grant, now, CONFIRM_TTL_SECS)?;
    Ok(SignupOutcome::Confirm { email, token })
}

/// A confirmed sign-up: the customer, its login and its first key (shown once).
#[derive(Debug)]
pub struct Confirmed {
    pub customer: Customer,
    pub key: NewKey,
    pub login: Login,
    /// The plan chosen on the pricing page before signing up, if any.
    pub plan: Option<String>,
}

/// Uses a confirmation token up and makes the account. A second use, an expired token
/// or an address confirmed meanwhile by another sign-up answers [`SigninError::BadToken`]
/// or the store's `email_taken`.
pub fn confirm(
    logins: &Logins,
    accounts: &dyn AccountStore,
    default_tier: &str,
    token: &str,
    now: i64,
) -> Result<Confirmed, SigninError> {
    let Some(TokenGrant::Confirm { name, email, password_hash, plan, signed_up }) =
        logins.take_token(token, now)?
    else {
        return Err(SigninError::BadToken);
    };
    let (customer, key) = accounts.add_customer(&name, &email, default_tier)?;
    let login = Login {
        customer_id: customer.id.clone(),
        password_hash,
        signed_up,
        confirmed: now,
        password_changed: now,
        first_call: None,
    };
    logins.put_login(&login)?;
    Ok(Confirmed { customer, key, login, plan })
}

/// A hash to verify against when the address is unknown, so both answers cost the same.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| password::hash("not a password anyone has").unwrap_or_default())
}

/// Checks an address and password; answers the customer id.
pub fn sign_in(logins: &Logins, email: &str, password_text: &str) -> Result<String, SigninError> {
    let login = match clean_email(email) {
        Ok(email) => match logins.customer_id_by_email(&email)? {
            Some(id) => logins.login(&id)?,
            None => None,
        },
        Err(_) => None,
    };
    match login {
        Some(login) if password::verify(password_text, &login.password_hash)? => Ok(login.customer_id),
        Some(_) => Err(SigninError::WrongCredentials),
        None => {
            let _ = password::verify(password_text, decoy_hash());
            Err(SigninError::WrongCredentials)
        }
    }
}

/// A reset link to mail, when the address has a login (else nothing, and the page says
/// the same).
pub fn forgot(logins: &Logins, email: &str, now: i64) -> Result<Option<(String, String)>, SigninError> {
    let email = clean_email(email)?;
    let Some(id) = logins.customer_id_by_email(&email)? else { return Ok(None) };
    if logins.login(&id)?.is_none() {
        return Ok(None);
    }
    let token = logins.issue_token(TokenGrant::Reset { customer_id: id }, now, RESET_TTL_SECS)?;
    Ok(Some((email, token)))
}

/// Whether a reset token is still good (for the page showing the form).
pub fn reset_token_valid(logins: &Logins, token: &str, now: i64) -> Result<bool, SigninError> {
    Ok(matches!(logins.peek_token(token, now)?, Some(TokenGrant::Reset { .. })))
}

/// Sets a new password with a reset token (used up); answers the customer id. Sessions
/// signed in before now end (see `Login::password_changed`).
pub fn reset(
    logins: &Logins,
    accounts: &dyn AccountStore,
    token: &str,
    new_password: &str,
    now: i64,
) -> Result<String, SigninError> {
    // Check the password against the policy before using the token up, so a refused
    // password leaves the link working.
    let Some(TokenGrant::Reset { customer_id }) = logins.peek_token(token, now)? else {
        return Err(SigninError::BadToken);
    };
    let email = accounts.customer(&customer_id)?.map(|c| c.email).unwrap_or_default();
    password::check_policy(new_password, &email)?;
    let hash = password::hash(new_password)?;
    let Some(TokenGrant::Reset { customer_id }) = logins.take_token(token, now)? else {
        return Err(SigninError::BadToken);
    };
    let mut login = logins.login(&customer_id)?.ok_or(SigninError::BadToken)?;
    login.password_hash = hash;
    login.password_changed = now;
    logins.put_login(&login)?;
    Ok(customer_id)
}

/// How sign-ups turn into API use: the onboarding figures of `/metrics` and the
/// operator dashboard, from the stored logins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Onboarding {
    pub signups: u64,
    pub with_first_call: u64,
    /// Median seconds from sign-up to the first successful API call.
    pub median_secs_to_first_call: Option<f64>,
}

pub fn onboarding(pairs: &[(i64, Option<i64>)]) -> Onboarding {
    let mut waits: Vec<i64> = pairs.iter().filter_map(|(s, f)| f.map(|f| (f - s).max(0))).collect();
    waits.sort_unstable();
    let median = match waits.len() {
        0 => None,
        n if n % 2 == 1 => Some(waits[n / 2] as f64),
        n => Some((waits[n / 2 - 1] + waits[n / 2]) as f64 / 2.0),
    };
    Onboarding {
        signups: pairs.len() as u64,
        with_first_call: waits.len() as u64,
        median_secs_to_first_call: median,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Accounts;

    fn stores() -> (tempfile::TempDir, Logins, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        (dir, Logins::open(&db).unwrap(), Accounts::open(&db).unwrap())
    }

    #[test]
    fn a_sign_up_makes_nothing_until_confirmed_and_its_link_works_once() {
        let (_d, logins, accounts) = stores();
        let t = 1_800_000_000;
        let SignupOutcome::Confirm { token, .. } =
            signup(&logins, "Ada", "ada@example.org", "correct horse battery", Some("pro"), t).unwrap()
        else {
            panic!("a new address gets a confirmation")
        };
        assert!(accounts.customers(None, 10).unwrap().is_empty(), "nothing before confirming");
        let done = confirm(&logins, &accounts, "free", &token, t + 60).unwrap();
        assert_eq!(done.plan.as_deref(), Some("pro"));
        assert!(done.key.secret.starts_with("cc_live_"));
        assert!(matches!(confirm(&logins, &accounts, "free", &token, t + 61), Err(SigninError::BadToken)));
        // The same address again: no second account, the owner is told instead.
        assert!(matches!(
            signup(&logins, "Eve", "ADA@example.org", "another long password", None, t).unwrap(),
            SignupOutcome::AlreadyRegistered { .. }
        ));
        // Signing in: right, wrong password, unknown address (same error).
        assert_eq!(sign_in(&logins, "ada@example.org", "correct horse battery").unwrap(), done.customer.id);
        assert!(matches!(
            sign_in(&logins, "ada@example.org", "wrong password!"),
            Err(SigninError::WrongCredentials)
        ));
        assert!(matches!(sign_in(&logins, "nobody@example.org", "x"), Err(SigninError::WrongCredentials)));
    }

    #[test]
    fn expired_links_and_resets() {
        let (_d, logins, accounts) = stores();
        let t = 1_800_000_000;
        let SignupOutcome::Confirm { token, .. } =
            signup(&logins, "Ada", "ada@example.org", "correct horse battery", None, t).unwrap()
        else {
            panic!()
        };
        assert!(matches!(
            confirm(&logins, &accounts, "free", &token, t + CONFIRM_TTL_SECS + 1),
            Err(SigninError::BadToken)
        ));
        let SignupOutcome::Confirm { token, .. } =
            signup(&logins, "Ada", "ada@example.org", "correct horse battery", None, t).unwrap()
        else {
            panic!()
        };
        let id = confirm(&logins, &accounts, "free", &token, t).unwrap().customer.id;
        assert!(forgot(&logins, "nobody@example.org", t).unwrap().is_none());
        let (_, reset_token) = forgot(&logins, "ada@example.org", t).unwrap().unwrap();
        // A refused password keeps the link; a good one uses it up.
        assert!(matches!(reset(&logins, &accounts, &reset_token, "short", t), Err(SigninError::Field(_))));
        assert_eq!(reset(&logins, &accounts, &reset_token, "a brand new password", t + 5).unwrap(), id);
        assert!(matches!(
            reset(&logins, &accounts, &reset_token, "yet another password", t + 6),
            Err(SigninError::BadToken)
        ));
        assert_eq!(logins.login(&id).unwrap().unwrap().password_changed, t + 5);
        assert!(sign_in(&logins, "ada@example.org", "a brand new password").is_ok());
        let (_, late) = forgot(&logins, "ada@example.org", t).unwrap().unwrap();
        assert!(!reset_token_valid(&logins, &late, t + RESET_TTL_SECS + 1).unwrap());
    }

    #[test]
    fn onboarding_figures() {
        assert_eq!(onboarding(&[]), Onboarding::default());
        let o = onboarding(&[(0, Some(60)), (10, None), (0, Some(300)), (100, Some(100))]);
        assert_eq!((o.signups, o.with_first_call, o.median_secs_to_first_call), (4, 3, Some(60.0)));
    }

    #[test]
    fn hostile_fields_are_refused_with_words() {
        for bad in
            ["", "a@b", "<script>@x.org", "ada@example.org\r\nBcc: eve@x.org", &"a".repeat(300), "a b@c.org"]
        {
            assert!(matches!(clean_email(bad), Err(SigninError::Field(_))), "{bad:?}");
        }
        assert!(clean_email("Ada.Lovelace+news@example.co.uk").is_ok());
        assert!(clean_name("Ada\nBcc: x").is_err());
        assert!(clean_name(&"x".repeat(10_000)).is_err());
        assert_eq!(clean_name("  Émilie du Châtelet ").unwrap(), "Émilie du Châtelet");
        assert_eq!(clean_name("'; DROP TABLE customers; --").unwrap(), "'; DROP TABLE customers; --");
    }
}
