//! `GET /v1/papers/{id}`: a paper of a HashMap, serialised to JSON on every request.
use std::collections::HashMap;
use std::io::BufRead;
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};

#[derive(serde::Deserialize, serde::Serialize)]
struct Paper {
    id: String,
    arxiv_id: Option<String>,
    title: String,
    authors: Vec<String>,
    submitted_utc: String,
    #[serde(rename = "abstract")]
    abstract_text: Option<String>,
    comments: Option<String>,
    journal_ref: Option<String>,
}

async fn paper(map: web::Data<HashMap<String, Arc<Paper>>>, id: web::Path<String>) -> HttpResponse {
    match map.get(id.as_str()) {
        Some(p) => HttpResponse::Ok().json(&**p),
        None => HttpResponse::NotFound().json(serde_json::json!({ "error": "not found" })),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let file = std::fs::File::open(args.get(1).map_or("data/papers.jsonl.gz", |s| s))?;
    let mut map = HashMap::new();
    for line in std::io::BufReader::new(flate2::read::GzDecoder::new(file)).lines() {
        let p: Arc<Paper> = Arc::new(serde_json::from_str(&line?)?);
        if let Some(a) = &p.arxiv_id {
            map.insert(a.clone(), p.clone());
        }
        map.insert(p.id.clone(), p);
    }
    eprintln!("{} ids loaded", map.len());
    let map = web::Data::new(map);
    let addr = args.get(2).cloned().unwrap_or_else(|| "127.0.0.1:18110".into());
    HttpServer::new(move || {
        App::new().app_data(map.clone()).route("/v1/papers/{id:.*}", web::get().to(paper))
    })
    .bind(addr)?
    .run()
    .await
}
