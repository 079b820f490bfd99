//! `citecast billing`: the manual payment provider's operator side (mark an invoice paid
//! when the bank transfer arrives, refund it) and a customer's billing at a glance. Run
//! through the running server when one holds the data directory, else on the store.

use clap::Subcommand;

use crate::ops::operator::OpRequest;

#[derive(Subcommand)]
pub enum BillingAction {
    /// Mark an open invoice paid (a bank transfer arrived); a past-due or paused
    /// subscription it held back is active again.
    MarkPaid {
        /// The invoice (inv_...).
        invoice: String,
        /// The transfer's reference, kept on the invoice.
        #[arg(long)]
        reference: Option<String>,
    },
    /// Refund a paid invoice (the subscription goes on; cancel it separately).
    Refund {
        /// The invoice (inv_...).
        invoice: String,
    },
    /// Show a customer's subscription, next invoice, invoices, credit, ledger and status changes.
    Show {
        /// The customer (cus_...).
        customer: String,
    },
}

impl BillingAction {
    pub fn into_op(self) -> OpRequest {
        match self {
            BillingAction::MarkPaid { invoice, reference } => {
                OpRequest::BillingMarkPaid { invoice_id: invoice, reference }
            }
            BillingAction::Refund { invoice } => OpRequest::BillingRefund { invoice_id: invoice },
            BillingAction::Show { customer } => OpRequest::ShowBilling { customer_id: customer },
        }
    }
}
