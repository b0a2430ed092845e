//! Configuration: flags, then `ROLLOUT_*` environment variables, then `rollout.toml`,
//! then defaults. This is the only place that reads the process environment.

mod assemble;

use crate::sandbox_config::{DeploySection, SandboxSection};
use anyhow::{Context, bail};
use clap::Args;
use rollout_models::{ApiKey, CatalogConfig, ModelEntry, ProviderConfig, WireFormat};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The shortest `ROLLOUT_ADMIN_KEY` accepted (a guessable admin key is an open server).
const MIN_ADMIN_KEY_CHARS: usize = 32;

/// Flags of `rollout serve`. Each has an environment variable; flags win.
#[derive(Debug, Default, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on. Keep 127.0.0.1 unless a proxy in front handles TLS and access.
    #[arg(long, env = "ROLLOUT_BIND")]
    pub(crate) bind: Option<String>,
    /// Directory for the SQLite database and environment work files.
    #[arg(long, env = "ROLLOUT_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH (default: DATA_DIR/rollout.db) or postgres://USER@HOST/DB.
    #[arg(long, env = "ROLLOUT_DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// The URL users reach this server at; trace URLs are built from it.
    #[arg(long, env = "ROLLOUT_PUBLIC_URL")]
    pub(crate) public_url: Option<String>,
    /// Path of a rollout.toml (default: ./rollout.toml when it exists).
    #[arg(long, env = "ROLLOUT_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Runs executed at once by this process (0 = API only, no worker).
    #[arg(long, env = "ROLLOUT_MAX_CONCURRENT_RUNS")]
    pub(crate) max_concurrent_runs: Option<usize>,
    /// The initial admin API key (for automated deployments); by default one is generated
    /// on first start and printed once.
    #[arg(
        long = "admin-key",
        env = "ROLLOUT_ADMIN_KEY",
        hide_env_values = true,
        hide = true
    )]
    pub(crate) admin_key: Option<String>,
    /// Seconds a worker's claim on a run lasts without a heartbeat.
    #[arg(long, env = "ROLLOUT_LEASE_SECONDS")]
    pub(crate) lease_seconds: Option<u64>,
    /// Environment sessions kept started ahead of time per stdio environment version, so
    /// runs do not wait for environments to boot (0: off).
    #[arg(long, env = "ROLLOUT_WARM_POOL_SIZE")]
    pub(crate) warm_pool_size: Option<usize>,
    /// Seconds runs in flight may go on after SIGTERM before they are released to the queue.
    #[arg(long, env = "ROLLOUT_SHUTDOWN_GRACE_SECONDS")]
    pub(crate) shutdown_grace_seconds: Option<u64>,
    /// Log level of rollout's own events (dependencies stay at warn), e.g. `debug`; or a
    /// full filter such as `rollout=debug,rmcp=info`.
    #[arg(long, env = "ROLLOUT_LOG")]
    pub(crate) log: Option<String>,
    /// `text` (default) or `json`: one JSON object per line, for log pipelines.
    #[arg(long, env = "ROLLOUT_LOG_FORMAT", value_enum)]
    pub(crate) log_format: Option<crate::logging::LogFormat>,
}

/// Flags of `rollout worker`: those of `serve` that concern running runs.
#[derive(Debug, Default, Args)]
pub(crate) struct WorkerArgs {
    /// Database URL shared with the API servers: postgres://USER@HOST/DB (or sqlite://PATH
    /// on the server's machine).
    #[arg(long, env = "ROLLOUT_DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// Directory for environment work files (and the SQLite database by default).
    #[arg(long, env = "ROLLOUT_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// The URL users reach the API at; callbacks' trace URLs are built from it.
    #[arg(long, env = "ROLLOUT_PUBLIC_URL")]
    pub(crate) public_url: Option<String>,
    /// Path of a rollout.toml (default: ./rollout.toml when it exists).
    #[arg(long, env = "ROLLOUT_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Runs executed at once by this process.
    #[arg(long, env = "ROLLOUT_MAX_CONCURRENT_RUNS")]
    pub(crate) max_concurrent_runs: Option<usize>,
    /// Seconds a claim on a run lasts without a heartbeat.
    #[arg(long, env = "ROLLOUT_LEASE_SECONDS")]
    pub(crate) lease_seconds: Option<u64>,
    /// Environment sessions kept started ahead of time per stdio environment version.
    #[arg(long, env = "ROLLOUT_WARM_POOL_SIZE")]
    pub(crate) warm_pool_size: Option<usize>,
    /// Seconds runs in flight may go on after SIGTERM before they are released to the queue.
    #[arg(long, env = "ROLLOUT_SHUTDOWN_GRACE_SECONDS")]
    pub(crate) shutdown_grace_seconds: Option<u64>,
    /// Log level of rollout's own events (dependencies stay at warn), or a full filter.
    #[arg(long, env = "ROLLOUT_LOG")]
    pub(crate) log: Option<String>,
    /// `text` (default) or `json`: one JSON object per line, for log pipelines.
    #[arg(long, env = "ROLLOUT_LOG_FORMAT", value_enum)]
    pub(crate) log_format: Option<crate::logging::LogFormat>,
}

impl From<WorkerArgs> for ServeArgs {
    fn from(args: WorkerArgs) -> Self {
        ServeArgs {
            database_url: args.database_url,
            data_dir: args.data_dir,
            public_url: args.public_url,
            config: args.config,
            max_concurrent_runs: args.max_concurrent_runs,
            lease_seconds: args.lease_seconds,
            warm_pool_size: args.warm_pool_size,
            shutdown_grace_seconds: args.shutdown_grace_seconds,
            log: args.log,
            log_format: args.log_format,
            ..ServeArgs::default()
        }
    }
}

/// `rollout.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub(crate) bind: Option<String>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) database_url: Option<String>,
    pub(crate) public_url: Option<String>,
    pub(crate) max_concurrent_runs: Option<usize>,
    pub(crate) lease_seconds: Option<u64>,
    pub(crate) shutdown_grace_seconds: Option<u64>,
    pub(crate) warm_pool_size: Option<usize>,
    pub(crate) log: Option<String>,
    pub(crate) log_format: Option<crate::logging::LogFormat>,
    /// Largest accepted request body, in bytes.
    pub(crate) max_body_bytes: Option<usize>,
    /// Largest accepted bundle upload (environment deploys), in bytes.
    pub(crate) max_upload_bytes: Option<usize>,
    /// Budget of an environment deploy's clone and build command, in seconds.
    pub(crate) build_timeout_seconds: Option<u64>,
    #[serde(default)]
    pub(crate) runs: RunDefaults,
    /// `[callbacks]`: delivery of run callbacks.
    #[serde(default)]
    pub(crate) callbacks: CallbackSection,
    /// `[limits]`: request rate per API key.
    #[serde(default)]
    pub(crate) limits: LimitsSection,
    /// `[http]`: the HTTP server's timeouts and connection cap.
    #[serde(default)]
    pub(crate) http: HttpSection,
    /// Origins allowed to call the API from a browser (CORS), e.g. `["https://chat.example.com"]`.
    #[serde(default)]
    pub(crate) cors_origins: Vec<String>,
    /// `[gateway]`: the MCP gateway (`/v1/environments/NAME/mcp`, `/v1/mcp`).
    #[serde(default)]
    pub(crate) gateway: GatewaySection,
    /// `[training]`: the `command` and `openai` training backends.
    #[serde(default)]
    pub(crate) training: crate::training::TrainingSection,
    /// Model providers by name; `anthropic` and `openai` exist by default.
    #[serde(default)]
    pub(crate) providers: BTreeMap<String, ProviderSection>,
    #[serde(default)]
    pub(crate) models: Vec<ModelSection>,
    /// `[prices.MODEL]`: USD per million input and output tokens, over the built-in list
    /// prices (which cover the well-known Anthropic and OpenAI models).
    #[serde(default)]
    pub(crate) prices: BTreeMap<String, rollout_models::Price>,
    /// Environments: registered at start-up (with a command or URL), and what the
    /// operator grants each one (secrets, sandbox, network).
    #[serde(default)]
    pub(crate) environments: Environments,
    /// `[sandbox]`: isolation, limits and users of environment processes.
    #[serde(default)]
    pub(crate) sandbox: SandboxSection,
    /// `[deploy]`: what git deploys may reach.
    #[serde(default)]
    pub(crate) deploy: DeploySection,
    /// `[otel]`: span export (OTLP/HTTP); the `OTEL_*` variables win over it.
    #[serde(default)]
    pub(crate) otel: crate::telemetry_config::OtelSection,
    /// `[metrics]`: who may read `GET /metrics`.
    #[serde(default)]
    pub(crate) metrics: crate::telemetry_config::MetricsSection,
}

/// `[runs]`: budgets applied to every run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunDefaults {
    pub(crate) agent_timeout_seconds: Option<u64>,
    pub(crate) grading_timeout_seconds: Option<u64>,
    /// The largest agent or grading budget a request may ask for.
    pub(crate) max_timeout_seconds: Option<u64>,
    /// How long an Idempotency-Key stands for its run.
    pub(crate) idempotency_ttl_seconds: Option<u64>,
    /// The most a tool result, message or other value inside a trace event may take; the
    /// rest is cut (with its size and SHA-256).
    pub(crate) max_event_bytes: Option<usize>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsSection {
    /// Requests per minute per API key (default: unlimited).
    pub(crate) requests_per_minute: Option<u32>,
    /// Requests a key may make at once (default: requests_per_minute).
    pub(crate) burst: Option<u32>,
    /// Failed sign-ins per client address per minute, and at once (default 10).
    pub(crate) sign_in_failures_per_minute: Option<u32>,
    /// Event streams (SSE) a key may hold open at once (default 16).
    pub(crate) event_streams_per_key: Option<usize>,
}

/// `[http]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpSection {
    /// Seconds a client has to send a request's headers; a keep-alive connection idle for
    /// that long is closed too (default 10).
    pub(crate) header_read_timeout_seconds: Option<u64>,
    /// Longest pause while a request body is received, in seconds (default 60).
    pub(crate) request_body_timeout_seconds: Option<u64>,
    /// Connections served at once; more wait to be accepted (default 1024).
    pub(crate) max_connections: Option<usize>,
}

/// `[gateway]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GatewaySection {
    /// A gateway session without requests for this long is closed (default 600).
    pub(crate) idle_timeout_seconds: Option<u64>,
    /// Open gateway sessions per API key (default 16).
    pub(crate) max_sessions_per_key: Option<usize>,
    /// Accepted `Host` headers besides loopback and the public URL's host; `"*"`: any.
    #[serde(default)]
    pub(crate) allowed_hosts: Vec<String>,
}

/// `[callbacks]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallbackSection {
    /// Allow loopback and private destinations (default false).
    pub(crate) allow_private: Option<bool>,
    /// Wait before the first retry, doubled for each next one (default 1000).
    pub(crate) first_backoff_ms: Option<u64>,
    /// Budget of one delivery attempt (default 10).
    pub(crate) timeout_seconds: Option<u64>,
}

/// `[providers.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderSection {
    /// `anthropic` or `openai` (Chat Completions, also for OpenAI-compatible servers).
    pub(crate) wire: Option<String>,
    pub(crate) base_url: Option<String>,
    /// The environment variable holding the key; omit for local servers without keys.
    pub(crate) api_key_env: Option<String>,
}

/// `[[models]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelSection {
    pub(crate) name: String,
    pub(crate) provider: String,
    pub(crate) upstream: Option<String>,
    pub(crate) max_tokens: Option<u32>,
    pub(crate) description: Option<String>,
}

/// One environment of `rollout.toml`, as `[[environments]]` (with `name`, and `project`
/// unless it is the default one) or `[environments.NAME]` / `[environments."PROJECT/NAME"]`:
/// a command (stdio) or a URL (streamable HTTP) registered at start-up, and/or the
/// operator's settings for an environment of that name (deployed or registered by API).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvironmentSection {
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default = "default_project")]
    pub(crate) project: String,
    pub(crate) command: Option<Vec<String>>,
    pub(crate) url: Option<String>,
    pub(crate) cwd: Option<PathBuf>,
    #[serde(default)]
    pub(crate) env: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    /// Variables of the server's environment handed to its processes.
    #[serde(default)]
    pub(crate) secrets: Vec<String>,
    /// False: its processes run without bubblewrap (a command the operator trusts).
    pub(crate) sandbox: Option<bool>,
    /// `host` or `none` (default: `[sandbox] network`).
    pub(crate) network: Option<rollout_mcp::Network>,
}

fn default_project() -> String {
    crate::serve::DEFAULT_PROJECT.to_string()
}

impl EnvironmentSection {
    /// How the operator wrote it, for messages.
    pub(crate) fn title(&self) -> String {
        if self.project == crate::serve::DEFAULT_PROJECT {
            format!("[environments.{}]", self.name)
        } else {
            format!("[environments.\"{}/{}\"]", self.project, self.name)
        }
    }
}

/// `[[environments]]` entries or `[environments.NAME]` tables.
#[derive(Debug, Default)]
pub(crate) struct Environments(pub(crate) Vec<EnvironmentSection>);

impl<'de> Deserialize<'de> for Environments {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> Visitor<'de> for Either {
            type Value = Vec<EnvironmentSection>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("[[environments]] entries or [environments.NAME] tables")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut sections = Vec::new();
                while let Some(section) = seq.next_element::<EnvironmentSection>()? {
                    if section.name.is_empty() {
                        return Err(serde::de::Error::custom(
                            "an [[environments]] entry needs a name",
                        ));
                    }
                    sections.push(section);
                }
                Ok(sections)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut sections = Vec::new();
                while let Some((key, mut section)) =
                    map.next_entry::<String, EnvironmentSection>()?
                {
                    let (project, name) = match key.split_once('/') {
                        Some((project, name)) => (project.to_string(), name.to_string()),
                        None => (section.project.clone(), key.clone()),
                    };
                    if !section.name.is_empty() && section.name != name {
                        return Err(serde::de::Error::custom(format!(
                            "[environments.\"{key}\"] has name = \"{}\"; the table's key is its name",
                            section.name
                        )));
                    }
                    section.project = project;
                    section.name = name;
                    sections.push(section);
                }
                Ok(sections)
            }
        }
        deserializer.deserialize_any(Either).map(Environments)
    }
}

/// Everything `serve` needs, resolved.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) bind: String,
    pub(crate) data_dir: PathBuf,
    pub(crate) database_url: String,
    /// When unset, the bound address is used.
    pub(crate) public_url: Option<String>,
    pub(crate) max_concurrent_runs: usize,
    pub(crate) lease_seconds: u64,
    pub(crate) shutdown_grace_seconds: u64,
    pub(crate) warm_pool_size: usize,
    pub(crate) log: String,
    pub(crate) log_format: crate::logging::LogFormat,
    pub(crate) admin_key: Option<String>,
    pub(crate) max_body_bytes: usize,
    pub(crate) max_upload_bytes: usize,
    pub(crate) build_timeout_seconds: u64,
    pub(crate) agent_timeout_seconds: u64,
    pub(crate) grading_timeout_seconds: u64,
    pub(crate) max_timeout_seconds: u64,
    pub(crate) idempotency_ttl_seconds: u64,
    pub(crate) max_event_bytes: usize,
    pub(crate) allow_private_callbacks: bool,
    pub(crate) callback_first_backoff_ms: u64,
    pub(crate) callback_timeout_seconds: u64,
    /// `(per_minute, burst)` per API key.
    pub(crate) rate_limit: Option<(u32, u32)>,
    /// Failed sign-ins per client address per minute (and at once).
    pub(crate) sign_in_failures_per_minute: u32,
    pub(crate) max_event_streams_per_key: usize,
    pub(crate) http: rollout_server::HttpLimits,
    pub(crate) cors_origins: Vec<String>,
    pub(crate) catalog: CatalogConfig,
    pub(crate) environments: Vec<EnvironmentSection>,
    pub(crate) gateway: GatewaySection,
    pub(crate) training: crate::training::TrainingSection,
    pub(crate) sandbox: SandboxSection,
    pub(crate) deploy: DeploySection,
    /// Span export, when an endpoint is configured.
    pub(crate) otel: Option<rollout_telemetry::OtelConfig>,
    /// `GET /metrics` without a key.
    pub(crate) metrics_public: bool,
}

impl Settings {
    /// Merges flags and environment (already merged by clap) over the file over defaults.
    pub(crate) fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let file = load_file(args.config.as_deref())?;
        // The defaults are the server's and the worker's own (`ServerConfig::default()`,
        // `WorkerConfig::default()`, ...): one place, used by `serve`, `worker` and `eval`.
        let server = rollout_server::ServerConfig::default();
        let worker = rollout_worker::WorkerConfig::default();
        let callbacks = rollout_worker::CallbackConfig::default();
        let bind = args
            .bind
            .or(file.bind)
            .unwrap_or_else(|| rollout_server::DEFAULT_BIND.into());
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        let database_url = args
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("rollout.db").display()));
        let public_url = args.public_url.or(file.public_url);
        let agent_timeout_seconds = file
            .runs
            .agent_timeout_seconds
            .unwrap_or(server.agent_timeout_seconds);
        let grading_timeout_seconds = file
            .runs
            .grading_timeout_seconds
            .unwrap_or(server.grading_timeout_seconds);
        if agent_timeout_seconds == 0 || grading_timeout_seconds == 0 {
            bail!("[runs] timeouts must be at least 1 second");
        }
        let max_timeout_seconds = file
            .runs
            .max_timeout_seconds
            .unwrap_or(server.max_timeout_seconds);
        if max_timeout_seconds < agent_timeout_seconds.max(grading_timeout_seconds) {
            bail!("[runs] max_timeout_seconds must be at least the default timeouts");
        }
        let admin_key = args.admin_key.filter(|key| !key.trim().is_empty());
        if let Some(key) = &admin_key
            && key.chars().count() < MIN_ADMIN_KEY_CHARS
        {
            bail!(
                "ROLLOUT_ADMIN_KEY is {} characters long; it must have at least {MIN_ADMIN_KEY_CHARS} \
                 (a short key can be guessed): generate one with `openssl rand -hex 32`",
                key.chars().count()
            );
        }
        Ok(Self {
            bind,
            data_dir,
            database_url,
            public_url,
            max_concurrent_runs: args
                .max_concurrent_runs
                .or(file.max_concurrent_runs)
                .unwrap_or(worker.max_concurrent_runs),
            lease_seconds: args
                .lease_seconds
                .or(file.lease_seconds)
                .unwrap_or(worker.lease.as_secs())
                .max(2),
            shutdown_grace_seconds: args
                .shutdown_grace_seconds
                .or(file.shutdown_grace_seconds)
                .unwrap_or(worker.shutdown_grace.as_secs()),
            warm_pool_size: args
                .warm_pool_size
                .or(file.warm_pool_size)
                .unwrap_or(worker.warm_pool_size),
            log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            admin_key,
            max_body_bytes: file.max_body_bytes.unwrap_or(server.max_body_bytes),
            max_upload_bytes: file.max_upload_bytes.unwrap_or(server.max_upload_bytes),
            build_timeout_seconds: file
                .build_timeout_seconds
                .unwrap_or(server.build_timeout.as_secs())
                .max(1),
            agent_timeout_seconds,
            grading_timeout_seconds,
            max_timeout_seconds,
            idempotency_ttl_seconds: file
                .runs
                .idempotency_ttl_seconds
                .unwrap_or(server.idempotency_ttl.as_secs()),
            max_event_bytes: file
                .runs
                .max_event_bytes
                .unwrap_or(rollout_store::DEFAULT_MAX_EVENT_BYTES),
            allow_private_callbacks: file
                .callbacks
                .allow_private
                .unwrap_or(callbacks.allow_private),
            callback_first_backoff_ms: file
                .callbacks
                .first_backoff_ms
                .unwrap_or(callbacks.first_backoff.as_millis() as u64),
            callback_timeout_seconds: file
                .callbacks
                .timeout_seconds
                .unwrap_or(callbacks.request_timeout.as_secs())
                .max(1),
            rate_limit: file
                .limits
                .requests_per_minute
                .filter(|per_minute| *per_minute > 0)
                .map(|per_minute| (per_minute, file.limits.burst.unwrap_or(per_minute).max(1))),
            sign_in_failures_per_minute: file
                .limits
                .sign_in_failures_per_minute
                .unwrap_or(server.sign_in_limit.per_minute)
                .max(1),
            max_event_streams_per_key: file
                .limits
                .event_streams_per_key
                .unwrap_or(server.max_event_streams_per_key)
                .max(1),
            http: http_limits(&file.http),
            cors_origins: file.cors_origins.clone(),
            catalog: catalog(&file.providers, &file.models, &file.prices)?,
            environments: file.environments.0,
            gateway: file.gateway,
            training: file.training,
            sandbox: file.sandbox,
            deploy: file.deploy,
            otel: crate::telemetry_config::otel_config(&file.otel, |name| std::env::var(name).ok()),
            metrics_public: file.metrics.public.unwrap_or(false),
        })
    }
}

fn http_limits(section: &HttpSection) -> rollout_server::HttpLimits {
    let defaults = rollout_server::HttpLimits::default();
    let seconds = |value: Option<u64>, default: std::time::Duration| {
        value.map_or(default, |s| std::time::Duration::from_secs(s.max(1)))
    };
    rollout_server::HttpLimits {
        header_read_timeout: seconds(
            section.header_read_timeout_seconds,
            defaults.header_read_timeout,
        ),
        request_body_timeout: seconds(
            section.request_body_timeout_seconds,
            defaults.request_body_timeout,
        ),
        max_connections: section
            .max_connections
            .unwrap_or(defaults.max_connections)
            .max(1),
    }
}

fn load_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let (path, required) = match path {
        Some(path) => (path.to_path_buf(), true),
        None => (PathBuf::from("rollout.toml"), false),
    };
    if !required && !path.exists() {
        return Ok(FileConfig::default());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The model catalog: built-in providers, overridden and extended by the file, with keys
/// read from the variables each provider names. `ANTHROPIC_BASE_URL` and `OPENAI_BASE_URL`
/// redirect the built-in providers (to a proxy, or a local fake in tests).
fn catalog(
    sections: &BTreeMap<String, ProviderSection>,
    models: &[ModelSection],
    prices: &BTreeMap<String, rollout_models::Price>,
) -> anyhow::Result<CatalogConfig> {
    let mut providers = CatalogConfig::builtin_providers();
    for provider in &mut providers {
        let variable = format!("{}_BASE_URL", provider.name.to_uppercase());
        if let Some(url) = read_env(&variable) {
            provider.base_url = url;
        }
    }
    for (name, section) in sections {
        let wire = match section.wire.as_deref() {
            None | Some("openai") => WireFormat::OpenAiChat,
            Some("anthropic") => WireFormat::Anthropic,
            Some(other) => {
                bail!("[providers.{name}] wire must be 'anthropic' or 'openai', got '{other}'")
            }
        };
        match providers.iter_mut().find(|p| &p.name == name) {
            Some(existing) => {
                if let Some(url) = &section.base_url {
                    existing.base_url.clone_from(url);
                }
                if section.api_key_env.is_some() {
                    existing.api_key_env.clone_from(&section.api_key_env);
                }
                if section.wire.is_some() {
                    existing.wire = wire;
                }
            }
            None => {
                let Some(base_url) = section.base_url.clone() else {
                    bail!("[providers.{name}] needs base_url, e.g. http://127.0.0.1:11434/v1");
                };
                providers.push(ProviderConfig {
                    name: name.clone(),
                    wire,
                    base_url,
                    api_key_env: section.api_key_env.clone(),
                    api_key: None,
                });
            }
        }
    }
    for provider in &mut providers {
        provider.api_key = provider
            .api_key_env
            .as_deref()
            .and_then(read_env)
            .map(ApiKey::new);
    }
    for model in models {
        if !providers.iter().any(|p| p.name == model.provider) {
            bail!(
                "[[models]] '{}' names provider '{}', which is not configured",
                model.name,
                model.provider
            );
        }
    }
    Ok(CatalogConfig {
        providers,
        models: models
            .iter()
            .map(|m| ModelEntry {
                name: m.name.clone(),
                provider: m.provider.clone(),
                upstream: m.upstream.clone(),
                max_tokens: m.max_tokens,
                description: m.description.clone(),
            })
            .collect(),
        prices: prices.clone(),
        ..CatalogConfig::default()
    })
}

/// Reads a non-empty environment variable.
#[allow(clippy::disallowed_methods)]
pub(crate) fn read_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}
