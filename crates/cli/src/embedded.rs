//! An in-process rollout for commands run without a server (like `inspect eval`): a store in
//! a data directory, a worker, and the HTTP API on a loopback port that only this process
//! knows the key of. The commands then talk to it exactly as they talk to a remote server.

use crate::config::{ServeArgs, Settings};
use crate::serve::{DEFAULT_PROJECT, register_startup_environments};
use anyhow::Context;
use rollout_models::ModelCatalog;
use rollout_server::{AppState, ServerConfig};
use rollout_store::{KeyRole, Store, generate_api_key};
use rollout_worker::{RunNotifier, Worker};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running in-process server and worker.
pub(crate) struct Embedded {
    pub(crate) url: String,
    pub(crate) key: String,
    pub(crate) data_dir: PathBuf,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
    worker: JoinHandle<()>,
    store: Store,
    _temp: Option<tempfile::TempDir>,
}

impl Embedded {
    /// Starts on `data_dir` (a temp directory when `None`) with `concurrency` worker slots.
    /// Logs go to stderr with the `log` filter.
    pub(crate) async fn start(
        data_dir: Option<PathBuf>,
        concurrency: usize,
        log: &str,
    ) -> anyhow::Result<Self> {
        let (temp, data_dir) = match data_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::tempdir().context("creating a temp data directory")?;
                let dir = temp.path().to_path_buf();
                (Some(temp), dir)
            }
        };
        let settings = Settings::resolve(ServeArgs {
            bind: Some("127.0.0.1:0".into()),
            data_dir: Some(data_dir.clone()),
            max_concurrent_runs: Some(concurrency.max(1)),
            shutdown_grace_seconds: Some(1),
            ..ServeArgs::default()
        })?;
        crate::logging::init(log, crate::logging::LogFormat::Text);
        let _ = rustls::crypto::ring::default_provider().install_default();
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating {}", settings.data_dir.display()))?;
        let store = Store::connect(&settings.database_url)
            .await
            .context("opening the embedded database")?
            .with_max_event_bytes(settings.max_event_bytes);
        store
            .ensure_project(DEFAULT_PROJECT, "Default project")
            .await?;
        let key = generate_api_key();
        store
            .create_api_key(DEFAULT_PROJECT, "embedded eval", KeyRole::Admin, &key)
            .await?;
        let sandbox = crate::sandbox_config::sandbox(&settings).await?;
        let mut server_config = settings.server_config(String::new(), &sandbox, None)?;
        // Task files are posted whole to the embedded server.
        server_config.max_body_bytes = settings.max_body_bytes.max(32 * 1024 * 1024);
        register_startup_environments(
            &store,
            &settings.environments,
            server_config.introspect_timeout,
            &sandbox,
        )
        .await?;
        let listener = tokio::net::TcpListener::bind(&settings.bind)
            .await
            .context("listening on loopback")?;
        let address = listener.local_addr().context("reading the bound address")?;
        let url = format!("http://{address}");
        let catalog = Arc::new(ModelCatalog::new(settings.catalog.clone()));
        let notifier = Arc::new(RunNotifier::default());
        let shutdown = CancellationToken::new();
        let worker = Worker::new(
            store.clone(),
            catalog.clone(),
            notifier.clone(),
            settings.worker_config(&sandbox, None, settings.callback_config()),
        );
        let worker = tokio::spawn(worker.run(shutdown.clone()));
        let state = AppState {
            store: store.clone(),
            catalog,
            notifier,
            config: Arc::new(ServerConfig {
                public_url: url.clone(),
                callbacks: rollout_worker::CallbackConfig {
                    public_url: Some(url.clone()),
                    ..server_config.callbacks.clone()
                },
                ..server_config
            }),
            shutdown: CancellationToken::new(),
        };
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            if let Err(error) =
                rollout_server::serve(listener, state, async move { stop.cancelled().await }).await
            {
                tracing::error!(%error, "the embedded server stopped");
            }
        });
        Ok(Self {
            url,
            key,
            data_dir,
            shutdown,
            server,
            worker,
            store,
            _temp: temp,
        })
    }

    /// Stops the server and the worker (runs in flight go back to the queue) and closes the
    /// store.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        let _ = self.worker.await;
        self.store.close().await;
    }
}
