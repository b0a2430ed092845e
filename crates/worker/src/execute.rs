//! Executes one claimed run: environment session, setup, agent phase, grading. The session
//! is a `rollout_mcp::ScenarioSession`: this path is the same for every protocol.

use crate::config::WorkerConfig;
use crate::error::RunError;
use crate::pool::{PoolKey, WarmPool};
use crate::replicas::ReplicaManager;
use crate::sink::StoreSink;
use crate::versions::Versions;
use rollout_agent::{AgentConfig, run_agent};
use rollout_domain::{EventKind, EventSink, RunOutcome, RunStatus};
use rollout_mcp::EnvTarget;
use rollout_models::ModelCatalog;
use rollout_store::{FinishRun, RunRecord, Store};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// What a run needs from the worker.
pub(crate) struct Executor<'a> {
    pub(crate) store: &'a Store,
    pub(crate) catalog: &'a ModelCatalog,
    pub(crate) config: &'a WorkerConfig,
    pub(crate) pool: &'a WarmPool,
    pub(crate) replicas: &'a ReplicaManager,
    pub(crate) versions: &'a Versions,
}

impl Executor<'_> {
    /// Runs the whole lifecycle and returns how the run ends. Events are recorded as
    /// they happen and all stored when it returns, but for the error event of a failed run;
    /// the caller flushes the sink and writes the terminal row. `version_id` is the id of the
    /// run's environment version its claim read (`None`: deleted).
    pub(crate) async fn execute(
        &self,
        run: &RunRecord,
        version_id: Option<&str>,
        sink: &StoreSink,
    ) -> FinishRun {
        // A run whose events could not all be stored ends as an error, like one whose
        // recording failed on the way.
        let executed = match self.try_execute(run, version_id, sink).await {
            Ok(finish) => sink
                .flush()
                .await
                .map(|()| finish)
                .map_err(|e| RunError::Agent(e.into())),
            Err(error) => Err(error),
        };
        let mut finish = match executed {
            Ok(finish) => finish,
            Err(error) => {
                let message = error.to_string();
                let status = match error {
                    RunError::Timeout { .. } => RunStatus::TimedOut,
                    _ => RunStatus::Failed,
                };
                let _ = sink
                    .record(EventKind::Error {
                        phase: error.phase().into(),
                        message: message.clone(),
                    })
                    .await;
                sink.ended_early(status, &message)
            }
        };
        let (steps, usage) = sink.totals();
        finish.steps = steps;
        finish.usage = usage;
        finish
    }

    async fn try_execute(
        &self,
        run: &RunRecord,
        version_id: Option<&str>,
        sink: &StoreSink,
    ) -> Result<FinishRun, RunError> {
        let spec = &run.spec;
        let version = self
            .versions
            .of(self.store, run, version_id)
            .await?
            .ok_or_else(|| RunError::MissingVersion {
                name: spec.env_name.clone(),
                version: spec.env_version,
            })?;
        let target: EnvTarget =
            serde_json::from_value(version.source.clone()).map_err(|e| RunError::BadSource {
                name: spec.env_name.clone(),
                version: spec.env_version,
                message: e.to_string(),
            })?;
        let scenario = version
            .description
            .as_ref()
            .and_then(|description| description.scenario(&spec.scenario_name))
            .cloned()
            .ok_or_else(|| RunError::MissingScenario {
                name: spec.env_name.clone(),
                version: spec.env_version,
                scenario: spec.scenario_name.clone(),
            })?;
        // Resolved in the run's project: another project's checkpoint is no model here.
        let project = run.project_id.as_str();
        let resolve = || {
            self.catalog
                .client_for_run(project, &spec.model, &spec.validation, &spec.scenario_args)
        };
        let model = match resolve() {
            Ok(model) => model,
            Err(error) => {
                if !crate::load_checkpoints_if_unknown(
                    self.catalog,
                    self.store,
                    project,
                    &spec.model,
                )
                .await?
                {
                    return Err(RunError::Model(error.to_string()));
                }
                resolve().map_err(|e| RunError::Model(e.to_string()))?
            }
        };

        let label = format!("{}@v{} run={}", spec.env_name, spec.env_version, run.id);
        let sandbox = self.config.sandbox.for_env(&run.project_id, &spec.env_name);
        let started = Instant::now();
        let session = within("environment start", self.config.connect_timeout, async {
            let target = self
                .replicas
                .resolve(&version.id, &target, &sandbox)
                .await
                .map_err(|message| {
                    RunError::Env(rollout_mcp::EnvError::Connect {
                        message,
                        stderr_tail: String::new(),
                    })
                })?;
            let key = PoolKey {
                env: (version.project_id.clone(), version.name.clone()),
                version: version.version,
            };
            self.pool
                .session(&key, &target, &label, &sandbox)
                .await
                .map_err(RunError::from)
        })
        .await?;
        sink.record(EventKind::EnvConnected {
            server_name: session.server_name().to_string(),
            version: spec.env_version,
            duration_ms: elapsed_ms(started),
        })
        .await
        .map_err(rollout_agent::AgentError::from)?;

        let started = Instant::now();
        let (setup, tools) = within("scenario setup", self.config.setup_timeout, async {
            let setup = session.setup(&scenario, &spec.scenario_args).await?;
            let tools = session.visible_tools().await?;
            Ok((setup, tools))
        })
        .await?;
        sink.record(EventKind::Setup {
            scenario_id: scenario.id.clone(),
            arguments: setup.arguments.clone(),
            prompt: setup.prompt.clone(),
            tools: tools.clone(),
            duration_ms: elapsed_ms(started),
        })
        .await
        .map_err(rollout_agent::AgentError::from)?;

        let agent_config = AgentConfig {
            model: spec.model.clone(),
            max_steps: spec.max_steps,
            system_prompt: spec.system_prompt.clone(),
        };
        let agent_budget = Duration::from_secs(spec.agent_timeout_seconds);
        let agent = run_agent(
            &agent_config,
            &setup.prompt,
            tools,
            model.as_ref(),
            session.as_ref(),
            sink,
        );
        let (answer, outcome) = tokio::select! {
            biased;
            _ = sink.budget_exceeded().cancelled() => (String::new(), sink.exceeded()),
            result = tokio::time::timeout(agent_budget, agent) => match result {
                Ok(result) => {
                    let result = result?;
                    (result.final_answer, result.outcome)
                }
                Err(_) => (String::new(), RunOutcome::AgentTimeout),
            },
        };
        sink.record(EventKind::Answer {
            text: answer.clone(),
            outcome: outcome.as_str().into(),
        })
        .await
        .map_err(rollout_agent::AgentError::from)?;

        let started = Instant::now();
        let grading_budget = Duration::from_secs(spec.grading_timeout_seconds);
        let evaluation = within("grading", grading_budget, async {
            Ok(session.grade(&scenario, &answer).await?)
        })
        .await?;
        sink.record(EventKind::Evaluation {
            evaluation: evaluation.clone(),
            duration_ms: elapsed_ms(started),
        })
        .await
        .map_err(rollout_agent::AgentError::from)?;
        drop(session);

        let status = match outcome {
            RunOutcome::AgentTimeout => RunStatus::TimedOut,
            RunOutcome::Answered
            | RunOutcome::MaxStepsReached
            | RunOutcome::TokenBudgetExceeded
            | RunOutcome::CostBudgetExceeded => RunStatus::Completed,
        };
        Ok(FinishRun {
            status,
            outcome: Some(outcome.as_str().into()),
            reward: Some(evaluation.reward),
            evaluation: Some(evaluation),
            final_response: Some(answer),
            steps: 0,
            usage: Default::default(),
            error: match outcome {
                RunOutcome::AgentTimeout => Some(format!(
                    "the agent phase took longer than {} s; the run was graded with an empty answer",
                    spec.agent_timeout_seconds
                )),
                RunOutcome::Answered
                | RunOutcome::MaxStepsReached
                | RunOutcome::TokenBudgetExceeded
                | RunOutcome::CostBudgetExceeded => None,
            },
        })
    }
}

/// Runs `future` within `budget`, or fails with a timeout naming the phase.
async fn within<T>(
    phase: &'static str,
    budget: Duration,
    future: impl Future<Output = Result<T, RunError>>,
) -> Result<T, RunError> {
    tokio::time::timeout(budget, future)
        .await
        .map_err(|_| RunError::Timeout {
            phase,
            seconds: budget.as_secs(),
        })?
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
