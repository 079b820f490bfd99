//! The support trees, values JSON: `support_tickets` (ticket id → ticket with its
//! messages), `support_customer_tickets` (customer id, NUL, ticket id → nothing: a
//! customer's tickets in one prefix scan), `support_escalations` (ticket id →
//! escalation), `support_nps` (customer id → survey answer) and `support_nps_sent`
//! (customer id → unix seconds the survey was mailed). Records that change together
//! (a ticket and its index entry, a ticket and its escalation) change in one sled
//! transaction.

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use super::{
    Author, Escalation, Message, NpsResponse, NpsSummary, SupportError, Ticket, TicketStatus, TicketSummary,
    MAX_MESSAGES, MAX_OPEN_TICKETS,
};

type Result<T> = std::result::Result<T, SupportError>;

/// The support records in the shared store.
#[derive(Clone)]
pub struct Support {
    db: sled::Db,
    tickets: sled::Tree,
    customer_tickets: sled::Tree,
    escalations: sled::Tree,
    nps: sled::Tree,
    nps_sent: sled::Tree,
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| SupportError::Corrupt(e.to_string()))
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| SupportError::Corrupt(e.to_string()))
}

fn index_key(customer_id: &str, ticket_id: &str) -> Vec<u8> {
    [customer_id.as_bytes(), b"\0", ticket_id.as_bytes()].concat()
}

fn abort(e: SupportError) -> ConflictableTransactionError<SupportError> {
    ConflictableTransactionError::Abort(e)
}

fn finish<T>(r: std::result::Result<T, TransactionError<SupportError>>) -> Result<T> {
    match r {
        Ok(v) => Ok(v),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(e.into()),
    }
}

/// The ticket `id` inside a transaction, if `owner` (when given) owns it; another
/// customer's ticket is answered like an unknown one.
fn load(
    tickets: &TransactionalTree,
    id: &str,
    owner: Option<&str>,
) -> std::result::Result<Ticket, ConflictableTransactionError<SupportError>> {
    let not_found = || abort(SupportError::NotFound(format!("ticket '{id}'")));
    let bytes = tickets.get(id.as_bytes())?.ok_or_else(not_found)?;
    let t: Ticket = decode(&bytes).map_err(abort)?;
    match owner {
        Some(o) if o != t.customer_id => Err(not_found()),
        _ => Ok(t),
    }
}

impl Support {
    pub fn open(db: &sled::Db) -> Result<Support> {
        Ok(Support {
            db: db.clone(),
            tickets: db.open_tree("support_tickets")?,
            customer_tickets: db.open_tree("support_customer_tickets")?,
            escalations: db.open_tree("support_escalations")?,
            nps: db.open_tree("support_nps")?,
            nps_sent: db.open_tree("support_nps_sent")?,
        })
    }

    /// Opens a ticket with its first message. Refused when the customer already has
    /// [`MAX_OPEN_TICKETS`] open.
    pub fn open_ticket(&self, customer_id: &str, subject: &str, body: &str, now: i64) -> Result<Ticket> {
        let open = self.tickets_of(customer_id)?.iter().filter(|t| t.status == TicketStatus::Open).count();
        if open >= MAX_OPEN_TICKETS {
            return Err(SupportError::Conflict(format!(
                "You have {open} open tickets, the most at once. Close the ones that are solved, or add to one of them."
            )));
        }
        let ticket = Ticket {
            id: format!("tkt_{:012}", self.db.generate_id()?),
            customer_id: customer_id.to_string(),
            subject: subject.to_string(),
            status: TicketStatus::Open,
            opened: now,
            updated: now,
            first_response: None,
            escalated: None,
            closed: None,
            messages: vec![Message { from: Author::Customer, body: body.to_string(), at: now }],
        };
        let value = encode(&ticket)?;
        let key = index_key(customer_id, &ticket.id);
        finish((&self.tickets, &self.customer_tickets).transaction(|(tickets, index)| {
            tickets.insert(ticket.id.as_bytes(), value.as_slice())?;
            index.insert(key.as_slice(), &[][..])?;
            Ok(())
        }))?;
        Ok(ticket)
    }

    /// The ticket `id`, whoever owns it.
    pub fn ticket(&self, id: &str) -> Result<Option<Ticket>> {
        self.tickets.get(id.as_bytes())?.map(|v| decode(&v)).transpose()
    }

    /// The ticket `id` if `customer_id` owns it.
    pub fn ticket_of(&self, customer_id: &str, id: &str) -> Result<Option<Ticket>> {
        Ok(self.ticket(id)?.filter(|t| t.customer_id == customer_id))
    }

    /// A customer's tickets, newest first.
    pub fn tickets_of(&self, customer_id: &str) -> Result<Vec<Ticket>> {
        let prefix = [customer_id.as_bytes(), b"\0"].concat();
        let mut out = Vec::new();
        for kv in self.customer_tickets.scan_prefix(prefix).rev() {
            let (k, _) = kv?;
            let id = String::from_utf8_lossy(&k[customer_id.len() + 1..]).into_owned();
            if let Some(t) = self.ticket(&id)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Every ticket, oldest first.
    pub fn tickets(&self) -> Result<Vec<Ticket>> {
        self.tickets.iter().map(|kv| decode(&kv?.1)).collect()
    }

    /// Adds a message. The operator's first one starts the ticket's first-response
    /// time; a customer writing to a closed ticket reopens it. `owner` limits the
    /// change to that customer's own tickets.
    pub fn reply(&self, id: &str, owner: Option<&str>, from: Author, body: &str, now: i64) -> Result<Ticket> {
        finish(self.tickets.transaction(|tickets| {
            let mut t = load(tickets, id, owner)?;
            if t.messages.len() >= MAX_MESSAGES {
                return Err(abort(SupportError::Conflict(format!(
                    "This ticket has {MAX_MESSAGES} messages, the most one holds. Open a new ticket and mention {id}."
                ))));
            }
            t.messages.push(Message { from, body: body.to_string(), at: now });
            t.updated = now;
            match from {
                Author::Operator => {
                    t.first_response.get_or_insert(now);
                }
                Author::Customer if t.status == TicketStatus::Closed => {
                    t.status = TicketStatus::Open;
                    t.closed = None;
                }
                Author::Customer => {}
            }
            tickets.insert(t.id.as_bytes(), encode(&t).map_err(abort)?)?;
            Ok(t)
        }))
    }

    /// Closes or reopens a ticket; refused when it already is in that state.
    pub fn set_status(
        &self,
        id: &str,
        owner: Option<&str>,
        status: TicketStatus,
        now: i64,
    ) -> Result<Ticket> {
        finish(self.tickets.transaction(|tickets| {
            let mut t = load(tickets, id, owner)?;
            if t.status == status {
                return Err(abort(SupportError::Conflict(format!(
                    "Ticket {id} is already {}.",
                    status.as_str()
                ))));
            }
            t.status = status;
            t.updated = now;
            t.closed = (status == TicketStatus::Closed).then_some(now);
            tickets.insert(t.id.as_bytes(), encode(&t).map_err(abort)?)?;
            Ok(t)
        }))
    }

    /// Records that `id`'s overdue first response was escalated, on the ticket and in the
    /// escalation log together. Answers `None` (and changes nothing) when it already was,
    /// so an escalation is recorded once.
    pub fn record_escalation(&self, id: &str, channel: &str, now: i64) -> Result<Option<Escalation>> {
        finish((&self.tickets, &self.escalations).transaction(|(tickets, escalations)| {
            let mut t = load(tickets, id, None)?;
            if t.escalated.is_some() {
                return Ok(None);
            }
            t.escalated = Some(now);
            let e = Escalation {
                ticket_id: t.id.clone(),
                at: now,
                channel: channel.to_string(),
                waited_secs: now - t.opened,
            };
            tickets.insert(t.id.as_bytes(), encode(&t).map_err(abort)?)?;
            escalations.insert(t.id.as_bytes(), encode(&e).map_err(abort)?)?;
            Ok(Some(e))
        }))
    }

    /// Every recorded escalation, by ticket id.
    pub fn escalations(&self) -> Result<Vec<Escalation>> {
        self.escalations.iter().map(|kv| decode(&kv?.1)).collect()
    }

    /// Stores a survey answer; refused when the customer already answered.
    pub fn answer_survey(&self, r: &NpsResponse) -> Result<()> {
        let value = encode(r)?;
        match self.nps.compare_and_swap(r.customer_id.as_bytes(), None as Option<&[u8]>, Some(value))? {
            Ok(()) => Ok(()),
            Err(_) => Err(SupportError::Conflict("You already answered the survey. Thank you!".into())),
        }
    }

    pub fn survey_answer(&self, customer_id: &str) -> Result<Option<NpsResponse>> {
        self.nps.get(customer_id.as_bytes())?.map(|v| decode(&v)).transpose()
    }

    pub fn survey_answers(&self) -> Result<Vec<NpsResponse>> {
        self.nps.iter().map(|kv| decode(&kv?.1)).collect()
    }

    /// When the survey was mailed to the customer, if it was.
    pub fn survey_sent(&self, customer_id: &str) -> Result<Option<i64>> {
        self.nps_sent.get(customer_id.as_bytes())?.map(|v| decode(&v)).transpose()
    }

    pub fn mark_survey_sent(&self, customer_id: &str, at: i64) -> Result<()> {
        self.nps_sent.insert(customer_id.as_bytes(), encode(&at)?)?;
        Ok(())
    }

    pub fn surveys_sent(&self) -> usize {
        self.nps_sent.len()
    }
}

/// The NPS figures for the operator's dashboard: score (% promoters − % detractors),
/// the counts, and the latest comments. Reads the store: call it off the async workers.
pub fn nps_summary(db: &sled::Db) -> Result<NpsSummary> {
    let s = Support::open(db)?;
    Ok(super::summarise_nps(&s.survey_answers()?, s.surveys_sent()))
}

/// The ticket figures for the operator's dashboard now: open, overdue (unanswered past
/// the 4-hour target), escalated, and the median first response. Reads every ticket:
/// call it off the async workers.
pub fn ticket_summary(db: &sled::Db) -> Result<TicketSummary> {
    let s = Support::open(db)?;
    Ok(super::summarise_tickets(&s.tickets()?, citecast_actors::dates::now_secs()))
}

/// Runs store work on the blocking pool.
pub async fn call<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    crate::engine::blocking(f, || SupportError::Unavailable).await
}

/// Unresolved tickets per customer (those not closed), for the churn risk score.
pub fn open_tickets_by_customer(db: &sled::Db) -> Result<Vec<(String, usize)>> {
    let mut by: std::collections::BTreeMap<String, usize> = Default::default();
    for t in Support::open(db)?.tickets()? {
        if t.closed.is_none() {
            *by.entry(t.customer_id).or_default() += 1;
        }
    }
    Ok(by.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Support) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        (dir, Support::open(&db).unwrap())
    }

    #[test]
    fn a_ticket_is_opened_answered_closed_and_reopened_by_a_reply() {
        let (_d, s) = store();
        let t = s.open_ticket("cus_a", "Quota", "Why 429?", 100).unwrap();
        assert_eq!(s.tickets_of("cus_a").unwrap(), vec![t.clone()]);
        assert!(s.tickets_of("cus_b").unwrap().is_empty());
        // Another customer cannot touch it.
        assert!(matches!(
            s.reply(&t.id, Some("cus_b"), Author::Customer, "hi", 101),
            Err(SupportError::NotFound(_))
        ));
        let t = s.reply(&t.id, None, Author::Operator, "Daily quota.", 200).unwrap();
        assert_eq!(t.first_response, Some(200));
        let t = s.reply(&t.id, None, Author::Operator, "More.", 300).unwrap();
        assert_eq!(t.first_response, Some(200), "only the first reply counts");
        let t = s.set_status(&t.id, Some("cus_a"), TicketStatus::Closed, 400).unwrap();
        assert_eq!((t.status, t.closed), (TicketStatus::Closed, Some(400)));
        assert!(matches!(
            s.set_status(&t.id, None, TicketStatus::Closed, 401),
            Err(SupportError::Conflict(_))
        ));
        let t = s.reply(&t.id, Some("cus_a"), Author::Customer, "Again", 500).unwrap();
        assert_eq!((t.status, t.closed, t.messages.len()), (TicketStatus::Open, None, 4));
    }

    #[test]
    fn an_escalation_is_recorded_once_with_the_ticket() {
        let (_d, s) = store();
        let t = s.open_ticket("cus_a", "Down", "Everything 503", 0).unwrap();
        let e = s.record_escalation(&t.id, "webhook", 5 * 3600).unwrap().unwrap();
        assert_eq!(e.waited_secs, 5 * 3600);
        assert_eq!(s.record_escalation(&t.id, "webhook", 6 * 3600).unwrap(), None);
        assert_eq!(s.ticket(&t.id).unwrap().unwrap().escalated, Some(5 * 3600));
        assert_eq!(s.escalations().unwrap().len(), 1);
    }

    #[test]
    fn a_customer_answers_the_survey_once() {
        let (_d, s) = store();
        let r = NpsResponse { customer_id: "cus_a".into(), score: 9, comment: "good".into(), at: 1 };
        s.answer_survey(&r).unwrap();
        let again = NpsResponse { score: 0, ..r.clone() };
        assert!(matches!(s.answer_survey(&again), Err(SupportError::Conflict(_))));
        assert_eq!(s.survey_answer("cus_a").unwrap(), Some(r));
    }

    #[test]
    fn open_tickets_are_capped_per_customer() {
        let (_d, s) = store();
        for i in 0..MAX_OPEN_TICKETS {
            s.open_ticket("cus_a", "s", "b", i as i64).unwrap();
        }
        assert!(matches!(s.open_ticket("cus_a", "s", "b", 99), Err(SupportError::Conflict(_))));
        assert_eq!(s.tickets_of("cus_a").unwrap().len(), MAX_OPEN_TICKETS);
    }
}
