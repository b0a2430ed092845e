//! `rollout serve`: the API server and a worker in one process.

use crate::config::{EnvironmentSection, ServeArgs, Settings};
use anyhow::{Context, anyhow};
use rollout_mcp::{EnvTarget, Sandbox};
use rollout_models::ModelCatalog;
use rollout_server::AppState;
use rollout_store::{KeyRole, Store, generate_api_key};
use rollout_worker::{ReplicaManager, RunNotifier, Worker, register_environment};
use serde_json::{Map, Value};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Every object belongs to a project; until projects can be created, this is the one.
pub(crate) const DEFAULT_PROJECT: &str = "default";

/// Starts everything and runs until SIGINT or SIGTERM.
pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(args)?;
    crate::logging::init(&settings.log, settings.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();

    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "creating the data directory {}",
            settings.data_dir.display()
        )
    })?;
    let store = open_store(&settings).await?;
    store
        .ensure_project(DEFAULT_PROJECT, "Default project")
        .await?;
    bootstrap_admin_key(&store, settings.admin_key.as_deref()).await?;
    if settings.admin_key.is_some() {
        store.close().await;
        return forget_admin_key();
    }
    let sandbox = crate::sandbox_config::sandbox(&settings).await?;

    let telemetry = telemetry(&settings)?;
    let catalog = Arc::new(ModelCatalog::new(settings.catalog.clone()));
    let listener = tokio::net::TcpListener::bind(&settings.bind)
        .await
        .with_context(|| {
            format!(
                "listening on {} (is another server using the port?)",
                settings.bind
            )
        })?;
    let address = listener.local_addr().context("reading the bound address")?;
    // The replicas of HTTP bundles are shared by the worker and the MCP gateway.
    let replicas = ReplicaManager::new();
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let mut server_config = settings.server_config(public_url, &sandbox, Some(&replicas))?;
    server_config.telemetry = telemetry.clone();
    server_config.callbacks.telemetry = telemetry.clone();
    register_startup_environments(
        &store,
        &settings.environments,
        server_config.introspect_timeout,
        &sandbox,
    )
    .await?;

    let notifier = Arc::new(RunNotifier::default());
    let shutdown = CancellationToken::new();
    // On PostgreSQL, what other processes write wakes this one's streams and sync requests.
    let relay = tokio::spawn(rollout_worker::follow_store(
        store.clone(),
        notifier.clone(),
        shutdown.clone(),
    ));
    let worker_task = if settings.max_concurrent_runs > 0 {
        let worker = Worker::new(
            store.clone(),
            catalog.clone(),
            notifier.clone(),
            settings
                .worker_config(&sandbox, Some(&replicas), server_config.callbacks.clone())
                .with_telemetry(telemetry.clone()),
        );
        Some(tokio::spawn(worker.run(shutdown.clone())))
    } else {
        None
    };

    let state = AppState {
        store: store.clone(),
        catalog,
        notifier,
        config: Arc::new(server_config),
        shutdown: CancellationToken::new(),
    };
    let scheduler_stop = shutdown.clone();
    let scheduler = tokio::spawn(rollout_server::run_scheduler(state.clone(), async move {
        scheduler_stop.cancelled().await;
    }));
    say(&format!(
        "rollout listening on http://{address} (database: {})",
        redact_url(&settings.database_url)
    ));
    let stop = shutdown.clone();
    rollout_server::serve(listener, state, async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        stop.cancel();
    })
    .await
    .context("serving HTTP")?;
    shutdown.cancel();
    let _ = scheduler.await;
    let _ = relay.await;
    if let Some(worker_task) = worker_task {
        let _ = worker_task.await;
    }
    telemetry.shutdown(Duration::from_secs(5)).await;
    store.close().await;
    Ok(())
}

/// The process's metrics, and its span exporter when `[otel]` or `OTEL_*` configure one.
pub(crate) fn telemetry(settings: &Settings) -> anyhow::Result<rollout_telemetry::Telemetry> {
    let Some(otel) = &settings.otel else {
        return Ok(rollout_telemetry::Telemetry::new());
    };
    let telemetry = rollout_telemetry::Telemetry::with_export(otel)
        .context("starting the OpenTelemetry exporter")?;
    tracing::info!(endpoint = %otel.traces_url(), service = %otel.service_name, capture_content = otel.capture_content, "exporting runs as OpenTelemetry spans");
    Ok(telemetry)
}

/// Opens (and migrates) the database of the settings, with their event size limit.
pub(crate) async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(&settings.database_url)
        .await
        .with_context(|| {
            format!(
                "opening the database ({})",
                redact_url(&settings.database_url)
            )
        })?;
    Ok(store.with_max_event_bytes(settings.max_event_bytes))
}

/// Makes sure an admin key exists: the one from `ROLLOUT_ADMIN_KEY`, or on first start
/// a generated one, printed once (only its hash is stored).
async fn bootstrap_admin_key(store: &Store, configured: Option<&str>) -> anyhow::Result<()> {
    if let Some(key) = configured {
        store
            .create_api_key(
                DEFAULT_PROJECT,
                "admin (ROLLOUT_ADMIN_KEY)",
                KeyRole::Admin,
                key,
            )
            .await?;
        return Ok(());
    }
    if store.count_api_keys().await? > 0 {
        return Ok(());
    }
    let key = generate_api_key();
    store
        .create_api_key(DEFAULT_PROJECT, "admin", KeyRole::Admin, &key)
        .await?;
    say(&format!(
        "\nCreated the admin API key (shown only this once; only its hash is stored):\n\n    {key}\n\nUse it as: Authorization: Bearer {key}\n"
    ));
    Ok(())
}

/// Re-executes this server without `ROLLOUT_ADMIN_KEY` (and `--admin-key`): once the key's
/// hash is stored, the key has no business in `/proc/PID/environ` or `cmdline`, where a
/// process of the same user could read it. Returns only on failure.
fn forget_admin_key() -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let program = args.next().unwrap_or_else(|| "rollout".into());
    let mut kept = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "--admin-key" {
            args.next();
        } else if !arg.to_string_lossy().starts_with("--admin-key=") {
            kept.push(arg);
        }
    }
    let error = std::process::Command::new("/proc/self/exe")
        .arg0(program)
        .args(kept)
        .env_remove("ROLLOUT_ADMIN_KEY")
        .exec();
    Err(error).context("restarting without ROLLOUT_ADMIN_KEY in the environment")
}

/// Registers the bundled example environments and the ones from `rollout.toml` that have
/// a command or URL, each in its sandbox. A broken environment is logged and kept as a
/// failed version; it does not stop the server.
pub(crate) async fn register_startup_environments(
    store: &Store,
    configured: &[EnvironmentSection],
    timeout: Duration,
    sandbox: &Sandbox,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the rollout binary")?;
    let mut targets: Vec<(String, String, EnvTarget)> = rollout_envs::NAMES
        .iter()
        .map(|name| {
            let command = vec![
                exe.display().to_string(),
                "example-env".into(),
                (*name).to_string(),
            ];
            (
                DEFAULT_PROJECT.to_string(),
                name.to_string(),
                EnvTarget::Command {
                    command,
                    cwd: None,
                    env: Map::new(),
                    limits: None,
                },
            )
        })
        .collect();
    for section in configured {
        if let Some(target) = target(section)? {
            targets.push((section.project.clone(), section.name.clone(), target));
        }
    }
    for (project, name, target) in targets {
        store.ensure_project(&project, &project).await?;
        match register_environment(store, &project, &name, &target, timeout, sandbox).await {
            Ok(version) => {
                let (tools, scenarios) = version
                    .description
                    .as_ref()
                    .map(|d| (d.tools.len(), d.scenarios.len()))
                    .unwrap_or_default();
                tracing::info!(env = %name, version = version.version, tools, scenarios, "environment ready")
            }
            Err(error) => tracing::error!(env = %name, %error, "environment not usable"),
        }
    }
    Ok(())
}

/// The target a section registers, if it has a command or URL (else it only holds the
/// operator's settings for an environment of that name).
fn target(section: &EnvironmentSection) -> anyhow::Result<Option<EnvTarget>> {
    let strings = |map: &std::collections::BTreeMap<String, String>| -> Map<String, Value> {
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect()
    };
    match (&section.command, &section.url) {
        (Some(command), None) if !command.is_empty() => Ok(Some(EnvTarget::Command {
            command: command.clone(),
            cwd: section.cwd.clone(),
            env: strings(&section.env),
            limits: None,
        })),
        (None, Some(url)) => Ok(Some(EnvTarget::Url {
            url: url.clone(),
            headers: strings(&section.headers),
        })),
        (None, None) => Ok(None),
        _ => Err(anyhow!(
            "{} needs one of command or url, not both (or neither, for settings only)",
            section.title()
        )),
    }
}

/// A line for the operator on stdout (the key banner, the listening address).
pub(crate) fn say(line: &str) {
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// The database URL without its password.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:***{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_string(),
    }
}

pub(crate) async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut terminate) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
