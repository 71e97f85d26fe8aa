//! `serve`, `demo`, `mock`: the long-running commands.

use std::path::Path;

use time::OffsetDateTime;

use super::{init_logging, read_file, runtime, shutdown_signal, Failure, MockCmd};

pub(super) fn serve(path: &Path) -> Result<(), Failure> {
    init_logging();
    // The text is read once: what is stored in the history is exactly what
    // was applied.
    let env = super::fedgate_env();
    let (config, text) = crate::config::Config::read(path, &env).map_err(Failure::start)?;
    let version = crate::config::history::version_of(&text);
    let listen = config.server.listen;
    // TLS files first: a server that says "listening" and then dies on a
    // key that does not match its certificate helps nobody.
    let tls = match (&config.server.tls_cert_file, &config.server.tls_key_file) {
        (Some(c), Some(k)) => Some(crate::trust::tls::load(c, k).map_err(Failure::start)?),
        _ => None,
    };
    for warning in crate::check::public_url_findings(&config) {
        tracing::warn!(code = warning.code, "{}", warning.message);
    }
    let store = crate::store::from_config(&config.store).map_err(Failure::start)?;
    let store_kind = config.store.kind.clone();
    let app = crate::gateway::App::new(config, store, Box::new(OffsetDateTime::now_utc))
        .map_err(Failure::start)?
        .with_version(Some(version));
    runtime()?.block_on(async move {
        // Say at once whether the store answers; never refuse to start for it:
        // /readyz stays not-ready until it does, and fedgate reconnects alone.
        match app.store.ready().await {
            Ok(()) => tracing::info!(store = %store_kind, "store ready"),
            Err(e) => tracing::warn!(store = %store_kind, error = %e, "store not ready yet: logins fail closed (503) until it answers"),
        }
        // Metadata URLs: fetched now; a tenant with neither a fetch nor a
        // last-known-good copy stops the start (it could never sign anyone in).
        app.refresh_trust().await;
        if let Some(t) = app.tenants_without_metadata().first() {
            return Err(Failure::Start {
                code: "start.metadata_unavailable",
                message: format!(
                    "tenant {t}: its metadata URL cannot be fetched and there is no last-known-good copy in the state directory"
                ),
            });
        }
        // Stored and audited before the first request is served under it.
        crate::gateway::reload::record(
            &app,
            path,
            &text,
            crate::gateway::reload::env_names(&env),
            "start",
        )
        .map_err(|e| Failure::Start {
            code: "start.config_history",
            message: format!("the configuration history cannot be written: {e}"),
        })?;
        let app = std::sync::Arc::new(app);
        let live = std::sync::Arc::new(crate::gateway::Live::from_file(app, path, env, text));
        live.spawn_upkeep();
        live.app().spawn_audit_sinks();
        let at_exit = live.clone();
        let result = match tls {
            Some(tls) => {
                let listener = std::net::TcpListener::bind(listen).map_err(|e| cannot_listen(listen, e))?;
                tracing::info!(
                    certificate = %tls.leaf.thumbprint_sha256,
                    "fedgate listening on https://{listen}"
                );
                crate::http::serve_live(live, listener, Some(&tls), shutdown_signal()).await
            }
            None => {
                let listener = std::net::TcpListener::bind(listen).map_err(|e| cannot_listen(listen, e))?;
                tracing::info!("fedgate listening on http://{listen} (loopback, plain HTTP)");
                crate::http::serve_live(live, listener, None, shutdown_signal()).await
            }
        };
        // In-flight requests are done: anchor what they wrote.
        at_exit.app().checkpoint_audit(true);
        // …and give the sinks a moment to ship it.
        at_exit.app().audit.sinks().flush(std::time::Duration::from_secs(5)).await;
        result.map_err(|e| Failure::Start {
            code: "start.server_error",
            message: format!("server error: {e}"),
        })
    })
}

fn cannot_listen(listen: std::net::SocketAddr, e: std::io::Error) -> Failure {
    Failure::Start {
        code: "start.cannot_listen",
        message: format!("cannot listen on {listen} (server.listen): {e}"),
    }
}

pub(super) fn demo(keep: bool, store: Option<&str>) -> Result<(), Failure> {
    let run = match store {
        None | Some("memory") => None,
        Some("redis") => Some(None),
        Some(s) => match s.strip_prefix("redis=") {
            Some(url) if !url.is_empty() => Some(Some(url.to_string())),
            _ => {
                return Err(Failure::usage(format!(
                    "--store {s:?}: use memory, redis or redis=URL"
                )))
            }
        },
    };
    let outcome = match run {
        None => runtime()?.block_on(crate::demo::run(keep)),
        Some(url) => runtime()?.block_on(crate::demo::run_redis(url)),
    };
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) => Err(Failure::Rejected {
            code: "demo.unexpected_outcome",
            message: "at least one scripted login did not end as expected (see the table)".into(),
        }),
        Err(e) => Err(Failure::usage(format!("demo: {e}"))),
    }
}

pub(super) fn mock(cmd: MockCmd) -> Result<(), Failure> {
    init_logging();
    let bind = |addr: std::net::SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Failure::usage(format!("cannot listen on {addr}: {e}")))
    };
    let served = match cmd {
        MockCmd::Init {
            dir,
            listen,
            public_url,
            console_url,
        } => {
            let path = crate::demo::mock_init(&dir, &listen, &public_url, &console_url)
                .map_err(|e| Failure::usage(format!("mock init: {e}")))?;
            println!("{}", path.display());
            return Ok(());
        }
        MockCmd::Entra { listen, public_url } => runtime()?.block_on(async move {
            let listener = bind(listen).await?;
            tracing::info!("mock Entra tenant on http://{listen} for {public_url}");
            Ok::<_, Failure>(
                crate::demo::serve_mock_entra(listener, &public_url, shutdown_signal()).await,
            )
        })?,
        MockCmd::Console {
            listen,
            base_url,
            fedgate_url,
            cert_file,
        } => {
            let pem = String::from_utf8_lossy(&read_file(&cert_file)?).to_string();
            runtime()?.block_on(async move {
                let listener = bind(listen).await?;
                tracing::info!("mock console on http://{listen} ({base_url})");
                Ok::<_, Failure>(
                    crate::demo::serve_mock_console(
                        listener,
                        &base_url,
                        &fedgate_url,
                        &pem,
                        shutdown_signal(),
                    )
                    .await,
                )
            })?
        }
    };
    served.map_err(|e| Failure::usage(format!("mock: {e}")))
}
