//! What billing errors mean to a caller: the customer's mistakes are 4xx and say what to
//! do instead; a failure of the store is 503 with a retry, never the caller's fault.

use crate::error::Coded;

use super::subscription::{Event, Status, TransitionError};

/// What can go wrong with subscriptions, invoices and payments.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("customer '{0}' already has a subscription; change its plan instead of starting another")]
    SubscriptionExists(String),
    #[error("customer '{0}' has no subscription")]
    NoSubscription(String),
    #[error("invoice '{0}' not found")]
    UnknownInvoice(String),
    #[error("there is no plan '{0}'")]
    UnknownPlan(String),
    #[error("the {0} plan is priced per contract; contact us to subscribe to it")]
    PlanNotSelfServe(String),
    #[error("the subscription is already on the {0} plan")]
    PlanUnchanged(String),
    /// A status change the lifecycle refuses; the message says why in the customer's words.
    #[error("{message}")]
    TransitionRefused { from: Status, event: Option<Event>, message: String },
    #[error("invoice '{id}' is {status}, not open: only an open invoice can be paid")]
    InvoiceNotOpen { id: String, status: &'static str },
    #[error("invoice '{id}' is {status}, not paid: only a paid invoice can be refunded")]
    InvoiceNotPaid { id: String, status: &'static str },
    #[error("{0}")]
    Invalid(String),
    /// sled failed (disk, I/O); the request may succeed later.
    #[error("the billing store is unavailable; retry shortly")]
    Store(#[source] sled::Error),
    /// The blocking pool that runs store calls is gone (the server is stopping).
    #[error("the billing store is unavailable; retry shortly")]
    Unavailable,
    /// A stored record cannot be read: our bug or a damaged store, never the caller's.
    #[error("a billing record is unreadable: {0}")]
    Corrupt(String),
}

impl From<sled::Error> for BillingError {
    fn from(e: sled::Error) -> Self {
        BillingError::Store(e)
    }
}

impl From<TransitionError> for BillingError {
    fn from(e: TransitionError) -> Self {
        let what = match e.event {
            Event::PaymentSucceeded => "be paid",
            Event::PaymentFailed => "fail a payment",
            Event::DunningExhausted => "end its payment reminders",
            Event::Pause => "be paused",
            Event::Resume => "be resumed",
            Event::Cancel => "be canceled",
        };
        BillingError::TransitionRefused {
            from: e.from,
            event: Some(e.event),
            message: format!("a {} subscription cannot {what}", status_word(e.from)),
        }
    }
}

/// A status as the customer reads it.
pub fn status_word(s: Status) -> &'static str {
    match s {
        Status::Trialing => "trialing",
        Status::Active => "active",
        Status::PastDue => "past-due",
        Status::Paused => "paused",
        Status::Canceled => "canceled",
    }
}

impl Coded for BillingError {
    fn code(&self) -> &'static str {
        match self {
            BillingError::SubscriptionExists(_) => "subscription_exists",
            BillingError::NoSubscription(_) | BillingError::UnknownInvoice(_) => "not_found",
            BillingError::UnknownPlan(_) => "unknown_plan",
            BillingError::PlanNotSelfServe(_) => "plan_not_self_serve",
            BillingError::PlanUnchanged(_) => "plan_unchanged",
            BillingError::TransitionRefused { .. } => "transition_refused",
            BillingError::InvoiceNotOpen { .. } => "invoice_not_open",
            BillingError::InvoiceNotPaid { .. } => "invoice_not_paid",
            BillingError::Invalid(_) => "invalid_body",
            BillingError::Store(_) | BillingError::Unavailable => "unavailable",
            BillingError::Corrupt(_) => "internal",
        }
    }

    fn status(&self) -> u16 {
        match self {
            BillingError::NoSubscription(_) | BillingError::UnknownInvoice(_) => 404,
            BillingError::SubscriptionExists(_)
            | BillingError::PlanUnchanged(_)
            | BillingError::TransitionRefused { .. }
            | BillingError::InvoiceNotOpen { .. }
            | BillingError::InvoiceNotPaid { .. } => 409,
            BillingError::UnknownPlan(_) | BillingError::PlanNotSelfServe(_) => 422,
            BillingError::Invalid(_) => 400,
            BillingError::Store(_) | BillingError::Unavailable => 503,
            BillingError::Corrupt(_) => 500,
        }
    }

    fn message(&self) -> String {
        match self {
            // The cause goes to the log, not to the caller.
            BillingError::Corrupt(_) => "internal error; it has been logged".into(),
            e => e.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, BillingError::Store(_) | BillingError::Unavailable).then_some(5)
    }
}
