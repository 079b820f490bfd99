//! `citecast serve`: opens the data directory, starts the actors and the HTTP server,
//! and loads the bundled data into an empty directory while already answering
//! `/healthz` (and `/readyz` with 503 until loaded).

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use actix_service::ServiceFactoryExt;
use actix_web::{web, App};

use crate::web::head_limit::HeadGuard;
use citecast_actors::actors::{GetStats, ImportBundled, ListImports, Reconcile};
use citecast_actors::imports::{bundled_state, BundledState};
use citecast_actors::{ingest, Engine};

use crate::cli::CliError;
use crate::config::Config;
use crate::web::AppState;

pub use crate::outbound::admin::ServerInfo;

pub fn read_server_info(config: &Config) -> Option<ServerInfo> {
    let text = std::fs::read_to_string(config.server_file()).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_server_info(config: &Config, info: &ServerInfo) -> std::io::Result<()> {
    let path = config.server_file();
    let tmp = path.with_extension("json.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(serde_json::to_string_pretty(info)?.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

/// 32 hex characters from the OS's random source.
pub fn random_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Loads the bundled data into an empty store (again, if an earlier first start was
/// cut short: the import is idempotent and recorded, so it is redone until its record
/// says completed), makes sure the index matches the store, then marks the server ready.
pub async fn bootstrap(state: web::Data<AppState>, config: Config) -> Result<(), CliError> {
    let started = Instant::now();
    state.models_warm.store(false, Ordering::Release);
    let engine = &state.engine;
    let stats = engine.store.send(GetStats).await.map_err(CliError::engine)?.map_err(CliError::engine)?;
    let imports =
        engine.store.send(ListImports).await.map_err(CliError::engine)?.map_err(CliError::engine)?;
    let bundled = bundled_state(&imports);
    // A store with papers and no bundled record was filled by an older version or by
    // `ingest`: it is the operator's data, not an unfinished first start.
    let load = match bundled {
        BundledState::Unfinished => true,
        BundledState::NeverStarted => stats.papers == 0,
        BundledState::Completed => false,
    };
    if load {
        let files = ingest::bundled_files(&config.bundled_data);
        if let Some(missing) = files.iter().find(|f| !f.is_file()) {
            tracing::warn!(file = %missing.display(), "bundled data not found; starting with an empty store");
        } else {
            if bundled == BundledState::Unfinished {
                tracing::warn!(dir = %config.bundled_data.display(), papers = stats.papers, citations = stats.citations, "the first import was cut short: completing it");
            } else {
                tracing::info!(dir = %config.bundled_data.display(), "empty data directory: loading the bundled data");
            }
            let reports = engine
                .ingest
                .send(ImportBundled { paths: files, progress: Some(crate::cli::progress::reporter()) })
                .await
                .map_err(CliError::engine)?
                .map_err(CliError::engine)?;
            for r in &reports {
                tracing::info!(file = %r.file, papers = r.papers_new, citations = r.citations_new, errors = r.errors, "loaded");
            }
        }
    }
    // Also after a load: a cut-short import may have stored papers whose index
    // documents were never committed, and a re-run sees those papers as unchanged.
    let rebuilt = engine
        .ingest
        .send(Reconcile { progress: Some(crate::cli::progress::reporter()) })
        .await
        .map_err(CliError::engine)?
        .map_err(CliError::engine)?;
    if rebuilt {
        tracing::info!("search index rebuilt from the store");
    }
    crate::engine::release_freed_memory();
    state.ready.store(true, Ordering::Release);
    tracing::info!(seconds = format!("{:.2}", started.elapsed().as_secs_f64()), "ready");
    // Prepare the forecast models after readiness, so restarts stay fast and the first
    // forecast doesn't wait for the corpus snapshot; forecasts asked meanwhile get 503
    // `warming_up` at once.
    crate::forecasts::warm_models(engine).await;
    state.models_warm.store(true, Ordering::Release);
    Ok(())
}

pub async fn serve(config: Config) -> Result<(), CliError> {
    if let Some(info) = read_server_info(&config) {
        if crate::outbound::admin::is_alive(&info) {
            return Err(CliError::Usage(format!(
                "{} is already served by citecast (pid {}) at {}",
                config.data_dir.display(),
                info.pid,
                info.addr
            )));
        }
    }
    // Refuse a mistyped SMTP URL or sender now rather than at the first sign-up.
    config.mailer().map_err(|e| CliError::Usage(e.to_string()))?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| CliError::io(&config.data_dir, e))?;
    // A directory made by an older version (or by hand) may be open to every local user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| CliError::io(&config.data_dir, e))?;
    }
    let engine = Engine::start(&config.engine()).map_err(CliError::engine)?;
    let token = random_token().map_err(|e| CliError::io("/dev/urandom", e))?;
    let accounts: Arc<dyn crate::accounts::AccountStore> =
        Arc::new(crate::accounts::Accounts::open(&engine.db).map_err(CliError::engine)?);
    let listener = std::net::TcpListener::bind(&config.addr)
        .map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", config.addr)))?;
    let local = listener.local_addr().map_err(|e| CliError::Usage(format!("cannot listen: {e}")))?;
    // Links in mail need the address people can reach: the port actually bound (for
    // `--addr host:0`), and a name rather than 0.0.0.0.
    let mut config = config;
    if config.public_url.is_none() {
        config.public_url = Some(if local.ip().is_unspecified() {
            format!("http://localhost:{}", local.port())
        } else {
            format!("http://{local}")
        });
    }
    let mut app_state = AppState::new(engine.clone(), accounts.clone(), &config, Some(token.clone()));
    // Referral commissions follow billing's payments and refunds from the start.
    crate::referrals::attach(&engine.db, &app_state.billing);
    // Demo data and real customers never share a directory.
    let demo_dir = crate::demo::is_seeded(&engine.db);
    if config.demo {
        let (db, acc, billing, tiers) =
            (engine.db.clone(), accounts.clone(), app_state.billing.clone(), config.tiers.clone());
        let label = config.data_dir.display().to_string();
        let seeded = actix_web::rt::task::spawn_blocking(move || {
            crate::demo::seed(&db, acc.as_ref(), &billing, &tiers, &label)
        })
        .await
        .map_err(|e| CliError::Engine(e.to_string()))?
        .map_err(|e| CliError::Usage(e.to_string()))?;
        if !seeded.already {
            tracing::info!(customers = seeded.customers, invoices = seeded.invoices_paid, "demo data seeded");
        }
    } else if demo_dir {
        return Err(CliError::Usage(format!(
            "{} holds demo data: serve it with --demo, or use another --data-dir for real customers",
            config.data_dir.display()
        )));
    }
    let scheduler =
        crate::ops::jobs::Scheduler::new(engine, accounts, app_state.issues.clone(), config.jobs())
            .with_billing(crate::billing::job::BillingJobSettings {
                billing: app_state.billing.clone(),
                tiers: config.tiers.clone(),
                mailer: app_state.mailer.clone(),
                base_url: app_state.site.base_url.clone(),
            });
    let scheduler = actix::Actor::start(scheduler);
    app_state.jobs = Some(scheduler);
    let state = web::Data::new(app_state);
    let sources = crate::ops::monitor::Sources {
        engine: state.engine.clone(),
        metrics: state.metrics.clone(),
        jobs: state.jobs.clone(),
    };
    let monitor = crate::ops::monitor::Monitor::new(sources, config.monitor()).map_err(CliError::Usage)?;
    let _ = state.monitor.set(actix::Actor::start(monitor));

    let app_state = state.clone();
    // actix-web's HttpServer, assembled by hand so every connection passes through the
    // head guard first (see http/head_limit.rs).
    let server = actix_server::Server::build()
        .workers(config.workers)
        .listen("citecast", listener, move || {
            let state = app_state.clone();
            let app = App::new()
                .wrap(actix_web::middleware::Compress::default())
                .wrap(actix_web::middleware::from_fn(crate::web::timing::record))
                .configure(move |c| crate::web::configure(c, state.clone()));
            let app = actix_service::IntoServiceFactory::into_factory(app)
                .map_err(|e: actix_web::Error| e.error_response());
            let http = actix_http::HttpService::build()
                .local_addr(local)
                .finish(actix_service::map_config(app, move |_| actix_web::dev::AppConfig::default()));
            actix_service::fn_service(|io: actix_rt::net::TcpStream| {
                let peer = io.peer_addr().ok();
                let _ = io.set_nodelay(true);
                std::future::ready(Ok((HeadGuard::new(io), actix_http::Protocol::Http1, peer)))
            })
            .and_then(http)
        })
        .map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", config.addr)))?
        .run();
    let addr = local.to_string();
    let info = ServerInfo { addr: addr.clone(), pid: std::process::id(), token };
    write_server_info(&config, &info).map_err(|e| CliError::io(config.server_file(), e))?;
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "listening");

    // Idle buckets of the form limits (sign-up, log-in, reset) are dropped every minute.
    let sweep_state = state.clone();
    actix_web::rt::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            sweep_state.form_limits.sweep();
        }
    });
    // The newsletter's send queue, delivered by its own thread (SMTP blocks).
    crate::newsletter::delivery::start(
        crate::newsletter::delivery::DeliverySettings {
            subscribers: crate::newsletter::store::Subscribers::open(&state.engine.db)
                .map_err(|e| CliError::Engine(e.to_string()))?,
            issues: state.issues.clone(),
            mailer: state.mailer.clone(),
            secret: state.site.secret.clone(),
            base_url: state.site.base_url.clone(),
            rate_per_minute: config.newsletter_rate_per_minute,
            commit_log: config.data_dir.join("newsletter-commits.log"),
        },
        crate::newsletter::delivery::Wake::default(),
    );
    let boot_state = state.clone();
    let boot_config = config.clone();
    actix_web::rt::spawn(async move {
        if let Err(e) = bootstrap(boot_state, boot_config).await {
            tracing::error!(error = %e, "loading data failed; the server stays not ready");
        }
    });

    let result = server.await;
    // Graceful stop: make the last daily counts and writes durable.
    if let Ok(Err(e)) = state.limiter.send(crate::accounts::limits::FlushUsage).await {
        tracing::error!(error = %e, "cannot persist daily usage");
    }
    if let Ok(Err(e)) = state.engine.store.send(citecast_actors::actors::FlushStore).await {
        tracing::error!(error = %e, "cannot flush the store");
    }
    let _ = std::fs::remove_file(config.server_file());
    result.map_err(|e| CliError::Usage(format!("server stopped: {e}")))
}
