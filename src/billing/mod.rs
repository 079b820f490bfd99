//! Billing: subscriptions, invoices and payments (issue 18). So far, its plain logic: the
//! subscription lifecycle, billing periods and proration ([`subscription`]), and the
//! verification of payment-provider webhooks ([`signature`]).

pub mod signature;
pub mod store;
pub mod subscription;

pub use store::Billing;
