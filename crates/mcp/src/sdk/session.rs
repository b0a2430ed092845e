//! The active scenario of one MCP session: its running task, the submitted answer, and the
//! setup/evaluate steps that drive it (protocol §5).

use super::scenario::{Answer, Scenario, ScenarioContext};
use super::state::SessionState;
use rollout_domain::Evaluation;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinHandle};

/// A scenario between its prompt and its evaluation in one MCP session.
pub(crate) struct ActiveScenario {
    pub(crate) scenario: Arc<Scenario>,
    /// What `_hud_submit` stored (already decoded from its string), if anything.
    pub(crate) submitted: Option<Value>,
    answer_tx: oneshot::Sender<Answer>,
    task: AbortOnDrop,
}

/// Aborts the scenario task when the session lets go of it (replaced, evaluated, or closed),
/// like hud drops its generator.
struct AbortOnDrop(JoinHandle<Result<Evaluation, String>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a scenario could not be set up.
pub(crate) enum StartError {
    /// The arguments do not deserialize into the scenario's type.
    InvalidArguments(String),
    /// The scenario failed, or ended, before handing out a prompt.
    Setup(String),
}

/// Runs the scenario up to its prompt. On success the scenario waits in the returned
/// [`ActiveScenario`] for its answer.
pub(crate) async fn start(
    scenario: Arc<Scenario>,
    scenario_id: String,
    arguments: Value,
    state: SessionState,
) -> Result<(String, ActiveScenario), StartError> {
    let (prompt_tx, prompt_rx) = oneshot::channel();
    let (answer_tx, answer_rx) = oneshot::channel();
    let context = ScenarioContext::new(scenario_id.clone(), prompt_tx, answer_rx, state);
    let future = scenario
        .start(arguments, context)
        .map_err(StartError::InvalidArguments)?;
    let mut task = AbortOnDrop(tokio::spawn(future));
    let empty_prompt =
        || StartError::Setup(format!("Scenario '{scenario_id}' returned empty prompt"));
    let prompt = tokio::select! {
        prompt = prompt_rx => match prompt {
            Ok(text) => text,
            // The context was dropped without a prompt: the scenario is ending; report how.
            Err(_) => return Err(match (&mut task.0).await {
                Ok(Err(message)) => StartError::Setup(message),
                Ok(Ok(_)) => empty_prompt(),
                Err(error) => StartError::Setup(describe_join_error(&scenario_id, error)),
            }),
        },
        joined = &mut task.0 => return Err(match joined {
            Ok(Err(message)) => StartError::Setup(message),
            Ok(Ok(_)) => empty_prompt(),
            Err(error) => StartError::Setup(describe_join_error(&scenario_id, error)),
        }),
    };
    if prompt.is_empty() {
        return Err(empty_prompt());
    }
    Ok((
        prompt,
        ActiveScenario {
            scenario,
            submitted: None,
            answer_tx,
            task,
        },
    ))
}

/// Hands the answer to the scenario and waits for its evaluation.
pub(crate) async fn evaluate(active: ActiveScenario) -> Result<Evaluation, String> {
    let ActiveScenario {
        scenario,
        submitted,
        answer_tx,
        mut task,
    } = active;
    // The scenario always waits for its answer after prompting, so the receiver is alive;
    // if it is not, the task's own result below says what happened.
    let _ = answer_tx.send(answer_for_scenario(submitted));
    match (&mut task.0).await {
        Ok(result) => result,
        Err(error) => Err(describe_join_error(&scenario.name, error)),
    }
}

/// hud's `_build_answer_for_generator` for scenarios without `returns=`: nothing stays
/// nothing, a JSON object becomes its `content` entry (`""` when absent), anything else is
/// passed as is.
fn answer_for_scenario(submitted: Option<Value>) -> Answer {
    match submitted {
        None => Answer::new(None),
        Some(Value::Object(mut map)) => Answer::new(Some(
            map.remove("content")
                .unwrap_or_else(|| Value::String(String::new())),
        )),
        Some(other) => Answer::new(Some(other)),
    }
}

fn describe_join_error(scenario: &str, error: JoinError) -> String {
    if error.is_panic() {
        let payload = error.into_panic();
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        format!("scenario '{scenario}' panicked: {message}")
    } else {
        format!("scenario '{scenario}' was cancelled")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn submitted_answers_reach_the_scenario_like_hud() {
        assert_eq!(answer_for_scenario(None), Answer::new(None));
        assert_eq!(
            answer_for_scenario(Some(json!("391"))),
            Answer::new(Some(json!("391")))
        );
        assert_eq!(
            answer_for_scenario(Some(json!({"total": 6}))),
            Answer::new(Some(json!("")))
        );
        assert_eq!(
            answer_for_scenario(Some(json!({"content": "Paris", "citations": []}))),
            Answer::new(Some(json!("Paris")))
        );
        assert_eq!(
            answer_for_scenario(Some(json!([1, 2]))),
            Answer::new(Some(json!([1, 2])))
        );
    }
}
