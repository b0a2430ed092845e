//! The gateway's recorder: a task per session that turns the proxy's events (or a hud 0.6
//! runtime session's, `runtime.rs`) into runs and their trace events. Each scenario set up
//! is a run inserted `running` with `model: "external"` and leased to `gateway`, kept alive
//! by a heartbeat while the session lives, and finished like a worker's run
//! (`rollout_worker::RunFinisher`).

use super::Slot;
use crate::auth::Caller;
use crate::state::AppState;
use rollout_domain::{EventKind, RunId, RunSpec, RunStatus};
use rollout_mcp::gateway::{GatewayEvent, GatewayHook};
use rollout_store::FinishRun;
use rollout_worker::{HeldRun, RunFinisher};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Who holds the lease of a gateway run.
const OWNER: &str = rollout_store::GATEWAY_OWNER;
/// The lease of a gateway run, renewed every third of it while the session lives.
const LEASE: Duration = Duration::from_secs(60);

/// Starts a recorder for a session that is not the MCP gateway's own (a hud 0.6 client's
/// runtime session, `runtime.rs`): its events become runs like a gateway session's.
pub(crate) fn spawn_recorder(
    state: &AppState,
    caller: &Caller,
    env_name: &str,
    env_version: i64,
) -> Arc<dyn GatewayHook> {
    spawn(state, caller, env_name, env_version, None)
}

/// Starts the recorder task of a session of `env_name`, holding the session's `slot` (if
/// the gateway counts it) until the session ends and its run is finished; answers the hook
/// the session reports to.
pub(super) fn spawn(
    state: &AppState,
    caller: &Caller,
    env_name: &str,
    env_version: i64,
    slot: Option<Slot<String>>,
) -> Arc<dyn GatewayHook> {
    let (tx, rx) = mpsc::unbounded_channel();
    let recorder = Recorder::new(state, caller, env_name, env_version);
    tokio::spawn(recorder.run(rx, slot));
    Arc::new(ChannelHook(tx))
}

/// Hands the proxy's events to the recorder task, in order.
struct ChannelHook(mpsc::UnboundedSender<GatewayEvent>);

impl GatewayHook for ChannelHook {
    fn record(&self, event: GatewayEvent) {
        let _ = self.0.send(event);
    }
}

/// Records a gateway session's scenarios as runs.
struct Recorder {
    state: AppState,
    project_id: String,
    /// The API key that opened the session (usage per key).
    key_id: String,
    env_name: String,
    env_version: i64,
    /// Ends each run as the worker ends its runs.
    finisher: RunFinisher,
}

/// The run of the scenario being played.
struct ActiveRun {
    id: RunId,
    lease: rollout_store::Lease,
    /// Metrics and spans of the run, as for the worker's runs.
    observer: rollout_telemetry::RunObserver,
    steps: u32,
    answer: Option<String>,
}

impl Recorder {
    fn new(state: &AppState, caller: &Caller, env_name: &str, env_version: i64) -> Self {
        Self {
            finisher: RunFinisher::new(
                state.store.clone(),
                state.notifier.clone(),
                state.config.callbacks.clone(),
            ),
            state: state.clone(),
            project_id: caller.project_id.clone(),
            key_id: caller.key_id.clone(),
            env_name: env_name.to_string(),
            env_version,
        }
    }

    async fn run(
        self,
        mut events: mpsc::UnboundedReceiver<GatewayEvent>,
        slot: Option<Slot<String>>,
    ) {
        let mut client = String::new();
        let mut connected: Option<(String, u64)> = None;
        let mut active: Option<ActiveRun> = None;
        let mut heartbeat = tokio::time::interval(LEASE / 3);
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = heartbeat.tick() => {
                    if let Some(run) = &active
                        && let Err(error) = self.state.store.heartbeat(&run.lease, LEASE).await
                    {
                        tracing::warn!(run = %run.id, %error, "could not renew a gateway run's lease");
                    }
                    continue;
                }
            };
            let Some(event) = event else { break };
            match event {
                GatewayEvent::Connected {
                    client_name,
                    server_name,
                    duration_ms,
                } => {
                    client = client_name;
                    connected = Some((server_name, duration_ms));
                }
                GatewayEvent::Setup {
                    scenario_id,
                    arguments,
                    prompt,
                    tools,
                    duration_ms,
                } => {
                    if let Some(run) = active.take() {
                        let message = "the client set up another scenario before the evaluation";
                        self.finish(run, RunStatus::Cancelled, None, Some(message.into()))
                            .await;
                    }
                    let setup = EventKind::Setup {
                        scenario_id: scenario_id.clone(),
                        arguments: arguments.clone(),
                        prompt,
                        tools,
                        duration_ms,
                    };
                    match self
                        .start(&client, &scenario_id, arguments, connected.as_ref())
                        .await
                    {
                        Ok((lease, observer)) => {
                            let id = lease.run_id.clone();
                            self.append(&id, Some(&observer), &setup).await;
                            active = Some(ActiveRun {
                                id,
                                lease,
                                observer,
                                steps: 0,
                                answer: None,
                            });
                        }
                        Err(error) => {
                            tracing::error!(%error, "could not record a gateway session's run")
                        }
                    }
                }
                GatewayEvent::ToolCall {
                    call,
                    result,
                    duration_ms,
                } => {
                    let Some(run) = active.as_mut() else {
                        continue;
                    };
                    run.steps += 1;
                    let event = EventKind::ToolCall {
                        step: run.steps,
                        call_id: call.id,
                        name: call.name,
                        arguments: call.arguments,
                        result,
                        duration_ms,
                    };
                    self.append(&run.id, Some(&run.observer), &event).await;
                }
                GatewayEvent::Submitted { answer } => {
                    let Some(run) = active.as_mut() else {
                        continue;
                    };
                    run.answer = Some(answer.clone());
                    let event = EventKind::Answer {
                        text: answer,
                        outcome: "answered".into(),
                    };
                    self.append(&run.id, Some(&run.observer), &event).await;
                }
                GatewayEvent::Evaluated {
                    evaluation,
                    duration_ms,
                    ..
                } => {
                    let Some(run) = active.take() else {
                        continue;
                    };
                    let event = EventKind::Evaluation {
                        evaluation: evaluation.clone(),
                        duration_ms,
                    };
                    self.append(&run.id, Some(&run.observer), &event).await;
                    self.finish(run, RunStatus::Completed, Some(evaluation), None)
                        .await;
                }
                GatewayEvent::EvaluationFailed { message, .. } => {
                    let Some(run) = active.take() else {
                        continue;
                    };
                    let event = EventKind::Error {
                        phase: "grading".into(),
                        message: message.clone(),
                    };
                    self.append(&run.id, Some(&run.observer), &event).await;
                    self.finish(run, RunStatus::Failed, None, Some(message))
                        .await;
                }
                GatewayEvent::Closed => break,
            }
        }
        if let Some(run) = active.take() {
            let message = "the MCP session ended (closed by the client, idle, or server shutdown) before the evaluation";
            self.finish(run, RunStatus::Cancelled, None, Some(message.into()))
                .await;
        }
        drop(slot);
    }

    /// Inserts the run of a scenario just set up, `running`, with its first events.
    async fn start(
        &self,
        client: &str,
        scenario_id: &str,
        arguments: Map<String, Value>,
        connected: Option<&(String, u64)>,
    ) -> Result<(rollout_store::Lease, rollout_telemetry::RunObserver), rollout_store::StoreError>
    {
        let scenario_name = scenario_id
            .split_once(':')
            .map_or(scenario_id, |(_, name)| name)
            .to_string();
        // The client is the agent: its model is unknown to rollout.
        let model = "external".to_string();
        let mut metadata = Map::new();
        metadata.insert("source".into(), Value::String("mcp_gateway".into()));
        if !client.trim().is_empty() {
            metadata.insert("client".into(), Value::String(client.to_string()));
        }
        let config = &self.state.config;
        let spec = RunSpec {
            env_name: self.env_name.clone(),
            env_version: self.env_version,
            scenario_name,
            scenario_args: arguments,
            model,
            max_steps: 0,
            system_prompt: None,
            validation: Vec::new(),
            metadata,
            agent_timeout_seconds: config.gateway.idle_timeout.as_secs(),
            grading_timeout_seconds: config.grading_timeout_seconds,
            max_total_tokens: None,
            max_cost_usd: None,
            callback: None,
            key_id: Some(self.key_id.clone()),
            traceparent: None,
        };
        let id = RunId::generate();
        let claimed = self
            .state
            .store
            .insert_running_run(&id, &self.project_id, &spec, OWNER, LEASE)
            .await?;
        let observer = config.telemetry.start_run(rollout_telemetry::RunStart {
            run_id: id.to_string(),
            project: self.project_id.clone(),
            environment: spec.env_name.clone(),
            env_version: spec.env_version,
            scenario: spec.scenario_name.clone(),
            arguments: spec.scenario_args.clone(),
            model: spec.model.clone(),
            provider: spec.model.clone(),
            attempt: 1,
            created_at_ms: claimed.run.created_at_ms,
            claimed_at_ms: claimed.run.created_at_ms,
            traceparent: None,
        });
        self.append(
            &id,
            Some(&observer),
            &EventKind::AttemptStarted {
                attempt: 1,
                worker: OWNER.into(),
            },
        )
        .await;
        if let Some((server_name, duration_ms)) = connected {
            self.append(
                &id,
                Some(&observer),
                &EventKind::EnvConnected {
                    server_name: server_name.clone(),
                    version: self.env_version,
                    duration_ms: *duration_ms,
                },
            )
            .await;
        }
        Ok((claimed.lease, observer))
    }

    async fn append(
        &self,
        run_id: &RunId,
        observer: Option<&rollout_telemetry::RunObserver>,
        event: &EventKind,
    ) {
        match self.state.store.append_event(run_id, 1, event).await {
            Ok(appended) => {
                if let Some(observer) = observer {
                    observer.event(&appended);
                }
                self.state.notifier.event_appended(run_id.clone());
            }
            Err(error) => {
                tracing::error!(run = %run_id, %error, "could not record a gateway event")
            }
        }
    }

    async fn finish(
        &self,
        run: ActiveRun,
        status: RunStatus,
        evaluation: Option<rollout_domain::Evaluation>,
        error: Option<String>,
    ) {
        let finish = FinishRun {
            status,
            outcome: run.answer.as_ref().map(|_| "answered".to_string()),
            reward: evaluation.as_ref().map(|evaluation| evaluation.reward),
            evaluation,
            final_response: run.answer,
            steps: i64::from(run.steps),
            usage: Default::default(),
            error,
        };
        let held = HeldRun {
            project_id: &self.project_id,
            lease: &run.lease,
            owner: OWNER,
            // The client is the agent: a gateway run has no callback.
            callback: false,
            observer: &run.observer,
            // A gateway run's record is read by whoever asks for it.
            claimed: None,
        };
        self.finisher.finish(held, &finish).await;
    }
}
