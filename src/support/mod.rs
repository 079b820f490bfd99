//! Customer success: the knowledge base (`kb`), support tickets with a first-response
//! target and escalation, and the NPS survey 30 days after sign-up.
//!
//! This file is the plain logic (no actix, no HTTP types): what a ticket and a survey
//! answer are, the checks on what people type, the first-response clock, the NPS score
//! and the signed survey links. `store.rs` keeps the records, `page.rs` and `admin.rs`
//! serve them, `job.rs` escalates overdue tickets and sends the surveys.

pub mod admin;
pub mod error;
pub mod job;
pub mod kb;
pub mod page;
pub mod routes;
pub mod store;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub use error::SupportError;
pub use store::{nps_summary, open_tickets_by_customer, ticket_summary, Support};

/// The first-response target: an operator answers a new ticket within 4 hours.
pub const FIRST_RESPONSE_TARGET_SECS: i64 = 4 * 3600;
/// Longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 150;
/// Longest message (a ticket's first one, a reply, a survey comment), in characters.
pub const MAX_BODY_CHARS: usize = 5000;
/// Longest survey comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;
/// Open tickets one customer may have at once: a runaway script cannot fill the queue.
pub const MAX_OPEN_TICKETS: usize = 20;
/// Messages in one ticket at most; past it, a new ticket.
pub const MAX_MESSAGES: usize = 200;
/// Days after sign-up the survey is mailed.
pub const NPS_AFTER_DAYS: i64 = 30;
/// Customers who signed up longer ago than this when the job first sees them are not
/// surveyed: the survey asks about the first month, not years later.
pub const NPS_WINDOW_DAYS: i64 = 60;
/// Survey comments the summary shows.
pub const LATEST_COMMENTS: usize = 10;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    Customer,
    Operator,
}

/// One message of a ticket, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: Author,
    pub body: String,
    /// Unix seconds.
    pub at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Open,
    Closed,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::Closed => "closed",
        }
    }
}

/// A support ticket with its conversation. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// `tkt_` and 12 digits, sorting in creation order.
    pub id: String,
    pub customer_id: String,
    pub subject: String,
    pub status: TicketStatus,
    pub opened: i64,
    pub updated: i64,
    /// The operator's first reply: what the 4-hour target measures.
    pub first_response: Option<i64>,
    /// When the overdue first response was escalated to the operator (once per ticket).
    pub escalated: Option<i64>,
    pub closed: Option<i64>,
    pub messages: Vec<Message>,
}

impl Ticket {
    /// When the first response is due.
    pub fn due(&self) -> i64 {
        self.opened + FIRST_RESPONSE_TARGET_SECS
    }

    /// Open, unanswered and past the target at `now`. A ticket the customer closed
    /// before anyone answered is not waiting on us.
    pub fn overdue(&self, now: i64) -> bool {
        self.status == TicketStatus::Open && self.first_response.is_none() && now > self.due()
    }

    /// Overdue and not yet escalated: what the escalation job acts on.
    pub fn needs_escalation(&self, now: i64) -> bool {
        self.overdue(now) && self.escalated.is_none()
    }

    /// Seconds from opening to the operator's first reply.
    pub fn first_response_secs(&self) -> Option<i64> {
        self.first_response.map(|r| r - self.opened)
    }

    /// Whether the first response met the target (`None` while unanswered).
    pub fn met_target(&self) -> Option<bool> {
        self.first_response_secs().map(|s| s <= FIRST_RESPONSE_TARGET_SECS)
    }
}

/// A recorded escalation: the ticket, when, and where it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub ticket_id: String,
    pub at: i64,
    /// `webhook` or `mail` (no alert webhook configured).
    pub channel: String,
    /// Seconds the ticket had waited when it was escalated.
    pub waited_secs: i64,
}

/// The operator's figures on tickets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketSummary {
    pub total: usize,
    pub open: usize,
    /// Open, unanswered, past the 4-hour target.
    pub overdue: usize,
    /// Tickets ever escalated.
    pub escalated: usize,
    /// Answered tickets and the median seconds to the first response among them.
    pub answered: usize,
    pub median_first_response_secs: Option<i64>,
    /// Answered within the target, of those answered.
    pub within_target: usize,
}

/// Figures of `tickets` at `now`.
pub fn summarise_tickets(tickets: &[Ticket], now: i64) -> TicketSummary {
    let mut waits: Vec<i64> = tickets.iter().filter_map(Ticket::first_response_secs).collect();
    TicketSummary {
        total: tickets.len(),
        open: tickets.iter().filter(|t| t.status == TicketStatus::Open).count(),
        overdue: tickets.iter().filter(|t| t.overdue(now)).count(),
        escalated: tickets.iter().filter(|t| t.escalated.is_some()).count(),
        answered: waits.len(),
        within_target: tickets.iter().filter(|t| t.met_target() == Some(true)).count(),
        median_first_response_secs: median(&mut waits),
    }
}

/// The median (the mean of the two middle values for an even count, rounded down).
pub fn median(values: &mut [i64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    Some(if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]).div_euclid(2) })
}

/// "2 h 05 min", "35 min", "3 d 4 h": a duration for people.
pub fn duration_words(secs: i64) -> String {
    let m = secs.max(0) / 60;
    let (d, h, min) = (m / 1440, (m % 1440) / 60, m % 60);
    match (d, h) {
        (0, 0) => format!("{min} min"),
        (0, _) => format!("{h} h {min:02} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// One answer to the survey (one per customer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NpsResponse {
    pub customer_id: String,
    /// 0 to 10: how likely they are to recommend citecast.
    pub score: u8,
    pub comment: String,
    pub at: i64,
}

/// A comment the summary shows, with its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NpsComment {
    pub score: u8,
    pub comment: String,
    /// RFC 3339.
    pub at: String,
}

/// The Net Promoter Score and what it is made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NpsSummary {
    pub responses: usize,
    /// Scores 9 and 10.
    pub promoters: usize,
    /// Scores 7 and 8.
    pub passives: usize,
    /// Scores 0 to 6.
    pub detractors: usize,
    /// % promoters − % detractors, from −100 to 100 (`None` without responses).
    pub score: Option<f64>,
    /// Surveys mailed so far.
    pub surveys_sent: usize,
    /// The latest non-empty comments, newest first.
    pub latest_comments: Vec<NpsComment>,
}

/// The summary of `responses` (any order), `sent` surveys mailed.
pub fn summarise_nps(responses: &[NpsResponse], sent: usize) -> NpsSummary {
    let n = responses.len();
    let promoters = responses.iter().filter(|r| r.score >= 9).count();
    let detractors = responses.iter().filter(|r| r.score <= 6).count();
    let score = (n > 0).then(|| 100.0 * (promoters as f64 - detractors as f64) / n as f64);
    let mut commented: Vec<&NpsResponse> =
        responses.iter().filter(|r| !r.comment.trim().is_empty()).collect();
    commented.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.customer_id.cmp(&b.customer_id)));
    NpsSummary {
        responses: n,
        promoters,
        passives: n - promoters - detractors,
        detractors,
        score,
        surveys_sent: sent,
        latest_comments: commented
            .into_iter()
            .take(LATEST_COMMENTS)
            .map(|r| NpsComment {
                score: r.score,
                comment: r.comment.clone(),
                at: citecast_actors::dates::rfc3339(r.at),
            })
            .collect(),
    }
}

/// Whether a customer who signed up at `signed_up` is due the survey at `now`: 30 days
/// on, and not more than [`NPS_WINDOW_DAYS`] (the job may have been paused a while, but
/// a customer of years is not asked about their first month).
pub fn survey_due(signed_up: i64, now: i64) -> bool {
    let age = now - signed_up;
    (NPS_AFTER_DAYS * 86_400..NPS_WINDOW_DAYS * 86_400).contains(&age)
}

// ---------------------------------------------------------------- input checks

/// A ticket's subject: one line of 1 to 150 characters, no markup. Subjects go into
/// mail subject lines, so a line break is refused rather than cleaned.
pub fn check_subject(subject: &str) -> Result<String, SupportError> {
    let s = subject.trim();
    if s.is_empty() {
        return Err(SupportError::Invalid(
            "Give the ticket a subject: a line saying what it is about.".into(),
        ));
    }
    if s.chars().count() > MAX_SUBJECT_CHARS {
        return Err(SupportError::Invalid(format!(
            "The subject is at most {MAX_SUBJECT_CHARS} characters; this one is {}. Put the details in the message.",
            s.chars().count()
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(SupportError::Invalid(
            "The subject is one line: remove the line breaks and tabs.".into(),
        ));
    }
    if s.contains(['<', '>']) {
        return Err(SupportError::Invalid(
            "The subject cannot contain < or >; describe the problem in words and put code in the message."
                .into(),
        ));
    }
    Ok(s.to_string())
}

/// A message: 1 to `max` characters of text. Line breaks and tabs are fine (people
/// paste error output and code, shown as text, never as markup); other control
/// characters are refused.
pub fn check_text(text: &str, max: usize, what: &str) -> Result<String, SupportError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(SupportError::Invalid(format!("Write the {what} before sending.")));
    }
    let n = t.chars().count();
    if n > max {
        return Err(SupportError::Invalid(format!(
            "The {what} is at most {max} characters; this one is {n}. Shorten it, or send the rest in a second message."
        )));
    }
    if t.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(SupportError::Invalid(format!(
            "The {what} contains invisible control characters; paste it as plain text."
        )));
    }
    // One convention for line ends, whatever the browser sent.
    Ok(t.replace("\r\n", "\n").replace('\r', "\n"))
}

/// A survey score: a whole number from 0 to 10.
pub fn check_score(score: &str) -> Result<u8, SupportError> {
    match score.trim().parse::<u8>() {
        Ok(n) if n <= 10 => Ok(n),
        _ => Err(SupportError::Invalid(
            "Choose a score from 0 (not at all likely) to 10 (extremely likely).".into(),
        )),
    }
}

/// A survey comment: optional, at most [`MAX_COMMENT_CHARS`].
pub fn check_comment(comment: &str) -> Result<String, SupportError> {
    if comment.trim().is_empty() {
        return Ok(String::new());
    }
    check_text(comment, MAX_COMMENT_CHARS, "comment")
}

// ---------------------------------------------------------------- survey links

fn survey_mac(secret: &[u8], customer_id: &str) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(b"support\0nps\0");
    m.update(customer_id.as_bytes());
    m.finalize().into_bytes().into()
}

/// The survey link's token, `<customer id>.<signature>`: nothing is stored, and it
/// stays valid as long as the site secret does (answering twice is refused by the store).
pub fn survey_token(secret: &[u8], customer_id: &str) -> String {
    format!("{customer_id}.{}", URL_SAFE_NO_PAD.encode(&survey_mac(secret, customer_id)[..18]))
}

/// The customer a survey token was made for, when it is genuine.
pub fn verify_survey_token(secret: &[u8], token: &str) -> Option<String> {
    if token.len() > 200 {
        return None;
    }
    let (id, sig) = token.rsplit_once('.')?;
    let given = URL_SAFE_NO_PAD.decode(sig).ok()?;
    let want = survey_mac(secret, id);
    (!id.is_empty() && given.len() == 18 && bool::from(want[..18].ct_eq(&given))).then(|| id.to_string())
}

/// Where mail for the operator goes: the support mailbox of the domain mail is sent
/// from (the server has no other address for its operator).
pub fn operator_address(mailer: &crate::outbound::mail::Mailer) -> String {
    format!("support@{}", mailer.sender_domain())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    fn ticket(opened: i64, first_response: Option<i64>, status: TicketStatus) -> Ticket {
        Ticket {
            id: format!("tkt_{opened:012}"),
            customer_id: "cus_1".into(),
            subject: "s".into(),
            status,
            opened,
            updated: opened,
            first_response,
            escalated: None,
            closed: None,
            messages: Vec::new(),
        }
    }

    #[test]
    fn a_ticket_is_overdue_only_when_open_unanswered_and_past_four_hours() {
        let t = ticket(1000, None, TicketStatus::Open);
        assert_eq!(t.due(), 1000 + 4 * H);
        // At exactly 4 hours it is still on time; one second later it is overdue.
        assert!(!t.overdue(1000 + 4 * H));
        assert!(t.overdue(1000 + 4 * H + 1));
        assert!(t.needs_escalation(1000 + 5 * H));
        // Answered, even late: no longer overdue.
        let answered = ticket(1000, Some(1000 + 6 * H), TicketStatus::Open);
        assert!(!answered.overdue(1000 + 7 * H));
        assert_eq!(answered.met_target(), Some(false));
        // Closed by the customer before an answer: not waiting on us.
        assert!(!ticket(1000, None, TicketStatus::Closed).overdue(1000 + 9 * H));
        // Escalated once: overdue still, but not escalated again.
        let mut e = ticket(1000, None, TicketStatus::Open);
        e.escalated = Some(1000 + 5 * H);
        assert!(e.overdue(1000 + 6 * H) && !e.needs_escalation(1000 + 6 * H));
    }

    #[test]
    fn ticket_summary_by_hand() {
        // Opened at 0: answered after 1 h, 3 h, 5 h (late), and one after 30 min that is
        // closed; one open unanswered for 6 h (overdue); one open for 2 h (not yet).
        let now = 100 * H;
        let mut closed = ticket(0, Some(H / 2), TicketStatus::Closed);
        closed.closed = Some(2 * H);
        let tickets = vec![
            ticket(0, Some(H), TicketStatus::Open),
            ticket(0, Some(3 * H), TicketStatus::Open),
            ticket(0, Some(5 * H), TicketStatus::Open),
            closed,
            ticket(now - 6 * H, None, TicketStatus::Open),
            ticket(now - 2 * H, None, TicketStatus::Open),
        ];
        let s = summarise_tickets(&tickets, now);
        assert_eq!(s.total, 6);
        assert_eq!(s.open, 5);
        assert_eq!(s.overdue, 1);
        assert_eq!(s.answered, 4);
        // Waits 0.5, 1, 3, 5 h: the median is (1 + 3) / 2 = 2 h.
        assert_eq!(s.median_first_response_secs, Some(2 * H));
        assert_eq!(s.within_target, 3);
        assert_eq!(summarise_tickets(&[], now).median_first_response_secs, None);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [5, 1, 3]), Some(3));
        assert_eq!(median(&mut [4, 1, 2, 3]), Some(2)); // (2 + 3) / 2 rounded down
        assert_eq!(median(&mut [7]), Some(7));
        assert_eq!(median(&mut []), None);
    }

    fn answer(customer: &str, score: u8, comment: &str, at: i64) -> NpsResponse {
        NpsResponse { customer_id: customer.into(), score, comment: comment.into(), at }
    }

    #[test]
    fn nps_by_hand() {
        // 10 answers: 10, 10, 9, 9, 9 (5 promoters), 8, 7, 7 (3 passives), 6, 0 (2
        // detractors): 50 % − 20 % = 30.
        let scores = [10, 10, 9, 9, 9, 8, 7, 7, 6, 0];
        let rs: Vec<_> = scores
            .iter()
            .enumerate()
            .map(|(i, &s)| answer(&format!("c{i}"), s, if i % 3 == 0 { "note" } else { "" }, i as i64))
            .collect();
        let s = summarise_nps(&rs, 14);
        assert_eq!((s.responses, s.promoters, s.passives, s.detractors), (10, 5, 3, 2));
        assert_eq!(s.score, Some(30.0));
        assert_eq!(s.surveys_sent, 14);
        // Comments from answers 0, 3, 6, 9: newest first.
        let scores_of: Vec<u8> = s.latest_comments.iter().map(|c| c.score).collect();
        assert_eq!(scores_of, vec![0, 7, 9, 10]);
        // All detractors: −100; all passives: 0; nobody: no score.
        assert_eq!(summarise_nps(&[answer("a", 3, "", 0), answer("b", 6, "", 0)], 2).score, Some(-100.0));
        assert_eq!(summarise_nps(&[answer("a", 7, "", 0), answer("b", 8, "", 0)], 2).score, Some(0.0));
        assert_eq!(summarise_nps(&[], 0).score, None);
        // 2 promoters and 1 passive of 3: 66.7 − 0.
        let third = summarise_nps(&[answer("a", 9, "", 0), answer("b", 10, "", 0), answer("c", 8, "", 0)], 3);
        assert!((third.score.unwrap() - 200.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_survey_is_due_from_day_30_to_day_60() {
        let d = 86_400;
        assert!(!survey_due(0, 30 * d - 1));
        assert!(survey_due(0, 30 * d));
        assert!(survey_due(0, 59 * d));
        assert!(!survey_due(0, 60 * d));
    }

    #[test]
    fn survey_tokens_are_signed_per_customer() {
        let t = survey_token(b"secret", "cus_abc");
        assert_eq!(verify_survey_token(b"secret", &t).as_deref(), Some("cus_abc"));
        assert_eq!(verify_survey_token(b"other", &t), None);
        let forged = t.replacen("cus_abc", "cus_abd", 1);
        assert_eq!(verify_survey_token(b"secret", &forged), None);
        assert_eq!(verify_survey_token(b"secret", ""), None);
        assert_eq!(verify_survey_token(b"secret", "."), None);
    }

    #[test]
    fn hostile_input_is_refused_in_words() {
        assert!(check_subject("").is_err());
        assert!(check_subject("   ").is_err());
        assert!(check_subject(&"x".repeat(10_000)).is_err());
        assert!(check_subject("Help\r\nBcc: victim@example.org").is_err());
        assert!(check_subject("<script>alert(1)</script>").is_err());
        assert_eq!(check_subject("  Forecast 503s since noon ").unwrap(), "Forecast 503s since noon");
        assert!(check_text("", 10, "message").is_err());
        assert!(check_text(&"x".repeat(10_000), MAX_BODY_CHARS, "message").is_err());
        assert!(check_text("a\u{0}b", 100, "message").is_err());
        assert_eq!(check_text("line 1\r\nline 2", 100, "message").unwrap(), "line 1\nline 2");
        assert!(check_score("11").is_err());
        assert!(check_score("-1").is_err());
        assert!(check_score("1 OR 1=1").is_err());
        assert!(check_score("").is_err());
        assert_eq!(check_score("10").unwrap(), 10);
        assert_eq!(check_comment("  ").unwrap(), "");
    }

    #[test]
    fn durations_in_words() {
        assert_eq!(duration_words(35 * 60), "35 min");
        assert_eq!(duration_words(2 * H + 5 * 60), "2 h 05 min");
        assert_eq!(duration_words(3 * 86_400 + 4 * H), "3 d 4 h");
    }
}
