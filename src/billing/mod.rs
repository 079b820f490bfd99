//! Billing: subscriptions, invoices and payments (issue 18). So far, the verification of
//! payment-provider webhooks ([`signature`]).

pub mod signature;
