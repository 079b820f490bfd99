//! Customer success routes: the knowledge base, tickets, the NPS survey and the
//! operator's support pages.

use actix_web::web;

use crate::web::{get_or_head, SiteRoute};

pub fn site_routes() -> Vec<SiteRoute> {
    use super::{admin, page};
    vec![
        SiteRoute::get("/docs", || get_or_head().to(page::docs_index)),
        SiteRoute::get("/docs/{slug}", || get_or_head().to(page::docs_article)),
        SiteRoute::get("/support", || get_or_head().to(page::tickets)),
        SiteRoute::post("/support", || web::post().to(page::open_ticket)),
        SiteRoute::get("/support/{id}", || get_or_head().to(page::ticket)),
        SiteRoute::post("/support/{id}/reply", || web::post().to(page::reply)),
        SiteRoute::post("/support/{id}/close", || web::post().to(page::close)),
        SiteRoute::post("/support/{id}/reopen", || web::post().to(page::reopen)),
        SiteRoute::get("/nps", || get_or_head().to(page::nps_form)),
        SiteRoute::post("/nps", || web::post().to(page::nps_answer)),
        SiteRoute::get("/admin/support", || get_or_head().to(admin::list)),
        SiteRoute::get("/admin/support/{id}", || get_or_head().to(admin::show)),
        SiteRoute::post("/admin/support/{id}/reply", || web::post().to(admin::reply)),
        SiteRoute::post("/admin/support/{id}/close", || web::post().to(admin::close)),
        SiteRoute::post("/admin/support/{id}/reopen", || web::post().to(admin::reopen)),
    ]
}
