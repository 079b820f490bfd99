//! The community's routes: comments, guidelines, events and moderation.

use actix_web::web;

use crate::web::{get_or_head, SiteRoute};

pub fn site_routes() -> Vec<SiteRoute> {
    use super::{admin, page};
    vec![
        SiteRoute::post("/community/comments", || web::post().to(page::post_comment)),
        SiteRoute::get("/community/comments/{id}/edit", || get_or_head().to(page::edit_form)),
        SiteRoute::post("/community/comments/{id}/edit", || web::post().to(page::edit)),
        SiteRoute::post("/community/comments/{id}/report", || web::post().to(page::report)),
        SiteRoute::get("/community/guidelines", || get_or_head().to(page::guidelines)),
        SiteRoute::get("/events", || get_or_head().to(page::events_page)),
        SiteRoute::get("/events.ics", || get_or_head().to(page::events_ics)),
        SiteRoute::get("/admin/community", || get_or_head().to(admin::queue)),
        SiteRoute::post("/admin/community/comments/{id}/hide", || web::post().to(admin::hide)),
        SiteRoute::post("/admin/community/comments/{id}/dismiss", || web::post().to(admin::dismiss)),
        SiteRoute::post("/admin/community/bans", || web::post().to(admin::ban)),
        SiteRoute::post("/admin/community/bans/{customer_id}/lift", || web::post().to(admin::lift)),
        SiteRoute::post("/admin/events", || web::post().to(admin::create_event)),
        SiteRoute::post("/admin/events/{id}", || web::post().to(admin::update_event)),
    ]
}
