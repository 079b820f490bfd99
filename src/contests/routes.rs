//! The contests' routes: pages for people and the operator's endpoints.

use actix_web::web;

use crate::web::{get_or_head, SiteRoute};

pub fn site_routes() -> Vec<SiteRoute> {
    use super::{admin, page};
    vec![
        SiteRoute::get("/contests", || get_or_head().to(page::list)),
        SiteRoute::get("/contests/people/{entrant}", || get_or_head().to(page::history)),
        SiteRoute::get("/contests/{id}", || get_or_head().to(page::detail)),
        SiteRoute::post("/contests/{id}/entry", || web::post().to(page::enter)),
        SiteRoute::post("/admin/contests", || web::post().to(admin::create)),
        SiteRoute::post("/admin/contests/{id}/lock", || web::post().to(admin::lock)),
        SiteRoute::post("/admin/contests/{id}/score", || web::post().to(admin::score)),
    ]
}
