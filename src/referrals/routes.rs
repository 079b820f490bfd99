//! The referral routes: the link, the customer's pages and the operator's.

use actix_web::web;

use crate::web::{get_or_head, SiteRoute};

pub fn site_routes() -> Vec<SiteRoute> {
    use super::{admin, page};
    vec![
        SiteRoute::get("/r/{code}", || get_or_head().to(page::link)),
        SiteRoute::get("/referrals", || get_or_head().to(page::overview)),
        SiteRoute::get("/referrals/statement", || get_or_head().to(page::statement)),
        SiteRoute::get("/admin/referrals", || get_or_head().to(admin::queue)),
        SiteRoute::get("/admin/referrals/payouts", || get_or_head().to(admin::payouts)),
        SiteRoute::post("/admin/referrals/payouts/{month}/paid", || web::post().to(admin::mark_paid)),
        SiteRoute::post("/admin/referrals/partners", || web::post().to(admin::set_partner)),
        SiteRoute::post("/admin/referrals/{id}/{action}", || web::post().to(admin::decide)),
    ]
}
