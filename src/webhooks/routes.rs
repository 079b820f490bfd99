//! The webhooks' operator routes (all under `/admin`, see [`super::admin`]).

use actix_web::web;

use crate::web::{get_or_head, SiteRoute};

pub fn site_routes() -> Vec<SiteRoute> {
    use super::admin;
    vec![
        SiteRoute::get("/admin/webhooks", || get_or_head().to(admin::dashboard)),
        SiteRoute::post("/admin/webhooks", || web::post().to(admin::add)),
        SiteRoute::get("/admin/webhooks/deliveries", || get_or_head().to(admin::deliveries)),
        SiteRoute::post("/admin/webhooks/deliveries/{id}/retry", || web::post().to(admin::retry)),
        SiteRoute::post("/admin/webhooks/{id}/remove", || web::post().to(admin::remove)),
    ]
}
