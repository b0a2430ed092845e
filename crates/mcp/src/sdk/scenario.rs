//! Scenarios: typed async functions that hand a prompt to the agent and grade its answer.

use super::schema::ArgsSchema;
use super::state::SessionState;
use rollout_domain::Evaluation;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

pub(crate) type EvaluationFuture = Pin<Box<dyn Future<Output = Result<Evaluation, String>> + Send>>;
type StartFn = dyn Fn(Value, ScenarioContext) -> Result<EvaluationFuture, String> + Send + Sync;

/// A scenario: setup (args → prompt) and evaluation (answer → [`Evaluation`]) in one async fn.
///
/// The function receives its typed arguments and a [`ScenarioContext`]. It prepares whatever it
/// needs, calls [`ScenarioContext::prompt`] with the prompt (this answers the client's
/// `prompts/get`), and gets back the agent's [`Answer`] once the client asks for the evaluation
/// (`resources/read`). What it returns is the evaluation: an [`Evaluation`], a plain `f64`
/// reward, or a `Result` of those (an `Err` fails the evaluation request).
///
/// On the wire the scenario is the prompt and the resource `env:name` (hud 0.5 protocol).
#[derive(Clone)]
pub struct Scenario {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) schema: Arc<ArgsSchema>,
    start: Arc<StartFn>,
    pub(crate) exclude_tools: Vec<String>,
    pub(crate) allowed_tools: Vec<String>,
    pub(crate) required_env_vars: Vec<String>,
    /// The JSON Schema of a structured answer (hud's `returns=`), published as `returns_schema`.
    pub(crate) returns_schema: Option<Value>,
}

impl Scenario {
    /// A scenario named `name` (bare, without the environment prefix; it must not contain `:`).
    ///
    /// An empty `description` is published as hud's default, `Scenario: <name>`.
    pub fn new<A, F, Fut>(
        name: impl Into<String>,
        description: impl Into<String>,
        function: F,
    ) -> Self
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(A, ScenarioContext) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoEvaluation,
    {
        let start = move |arguments: Value,
                          context: ScenarioContext|
              -> Result<EvaluationFuture, String> {
            let args = serde_json::from_value::<A>(arguments).map_err(|error| error.to_string())?;
            let future = function(args, context);
            Ok(Box::pin(async move { future.await.into_evaluation() }))
        };
        let name = name.into();
        let mut description = description.into();
        if description.is_empty() {
            description = format!("Scenario: {name}");
        }
        Self {
            name,
            description,
            schema: Arc::new(ArgsSchema::for_type::<A>()),
            start: Arc::new(start),
            exclude_tools: Vec::new(),
            allowed_tools: Vec::new(),
            required_env_vars: Vec::new(),
            returns_schema: None,
        }
    }

    /// Declares that the answer is a `T` (hud's `returns=`): `T`'s JSON Schema is published
    /// in `_meta.returns_schema` so that agents can ask their model for structured output,
    /// and the scenario reads the answer with [`Answer::parse`]. As on hud, a client submits
    /// the JSON text of a `T`, or `{"content": "<JSON text of a T>"}`.
    pub fn returns<T: JsonSchema>(mut self) -> Self {
        let mut schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
        if let Some(object) = schema.as_object_mut() {
            object.remove("$schema");
        }
        self.returns_schema = Some(schema);
        self
    }

    /// Hides tools matching these fnmatch patterns (`*`, `?`, `[...]`) while the scenario is
    /// active in a session: they leave `tools/list` and calls to them are refused.
    pub fn exclude_tools<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.exclude_tools
            .extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Brings back excluded tools matching these patterns (hud's `allowed_tools`).
    pub fn allowed_tools<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_tools
            .extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Declares environment variables the scenario needs (published in `_meta` only).
    pub fn required_env_vars<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_env_vars
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// The bare scenario name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The JSON Schema of the arguments.
    pub fn args_schema(&self) -> Value {
        Value::Object(self.schema.schema().clone())
    }

    /// The prompt's and resource's `_meta`, built like hud's `ScenarioMixin.scenario`.
    pub(crate) fn meta(&self) -> Map<String, Value> {
        let mut meta = Map::new();
        let arguments = self.schema.meta_arguments();
        if !arguments.is_empty() {
            meta.insert("arguments".into(), Value::Array(arguments));
        }
        let lists = [
            ("required_env_vars", &self.required_env_vars),
            ("exclude_tools", &self.exclude_tools),
            ("allowed_tools", &self.allowed_tools),
        ];
        for (key, list) in lists {
            if !list.is_empty() {
                let values = list.iter().cloned().map(Value::String).collect();
                meta.insert(key.into(), Value::Array(values));
            }
        }
        if let Some(schema) = &self.returns_schema {
            meta.insert("returns_schema".into(), schema.clone());
        }
        meta
    }

    /// What the hud client reads from a `prompts/get` result's `_meta` (tool filters and the
    /// structured answer's schema); hud's own server leaves them out, which loses them.
    pub(crate) fn setup_meta(&self) -> Map<String, Value> {
        let mut meta = self.meta();
        meta.retain(|key, _| {
            matches!(
                key.as_str(),
                "exclude_tools" | "allowed_tools" | "returns_schema"
            )
        });
        meta
    }

    /// Deserializes `arguments` and creates the scenario future (not yet running).
    pub(crate) fn start(
        &self,
        arguments: Value,
        context: ScenarioContext,
    ) -> Result<EvaluationFuture, String> {
        (self.start)(arguments, context)
    }
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The scenario's link to its MCP session: hands the prompt out and the answer in.
pub struct ScenarioContext {
    scenario_id: String,
    channels: Mutex<Option<PromptChannels>>,
    state: SessionState,
}

struct PromptChannels {
    prompt_tx: oneshot::Sender<String>,
    answer_rx: oneshot::Receiver<Answer>,
}

impl ScenarioContext {
    pub(crate) fn new(
        scenario_id: String,
        prompt_tx: oneshot::Sender<String>,
        answer_rx: oneshot::Receiver<Answer>,
        state: SessionState,
    ) -> Self {
        Self {
            scenario_id,
            state,
            channels: Mutex::new(Some(PromptChannels {
                prompt_tx,
                answer_rx,
            })),
        }
    }

    /// The session's value of type `T`, shared with the session's tools: set it up before
    /// prompting, read what the tools did after (see [`SessionState::get`]).
    pub fn state<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        self.state.get::<T>()
    }

    /// The scenario id, `env:scenario`.
    pub fn scenario_id(&self) -> &str {
        &self.scenario_id
    }

    /// Hands `text` to the client as the prompt and waits for the evaluation request, which
    /// brings the agent's answer.
    ///
    /// Call it once. A second call returns an empty [`Answer`] at once. If the session moves
    /// on (a new `prompts/get`, or the client goes away) the scenario is dropped while waiting
    /// here, like hud drops its generator.
    pub async fn prompt(&self, text: impl Into<String>) -> Answer {
        let Some(channels) = lock(&self.channels).take() else {
            tracing::warn!(scenario = %self.scenario_id, "prompt() called twice; returning an empty answer");
            return Answer::default();
        };
        if channels.prompt_tx.send(text.into()).is_err() {
            // Nobody waits for the prompt any more: the session dropped this scenario and its
            // task is being aborted.
            return std::future::pending().await;
        }
        match channels.answer_rx.await {
            Ok(answer) => answer,
            Err(_) => std::future::pending().await,
        }
    }
}

impl fmt::Debug for ScenarioContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScenarioContext")
            .field("scenario_id", &self.scenario_id)
            .finish()
    }
}

/// The agent's answer as the scenario receives it.
///
/// `None` when nothing was submitted. The submitted string is decoded like hud does: text
/// starting with `{`/`[` that parses as JSON becomes that value, and a JSON object becomes its
/// `content` entry (`""` when absent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer(Option<Value>);

impl Answer {
    /// An answer holding `value` (`None`: nothing submitted).
    pub fn new(value: Option<Value>) -> Self {
        Self(value)
    }

    /// Whether an answer was submitted.
    pub fn is_submitted(&self) -> bool {
        self.0.is_some()
    }

    /// The answer value, if any.
    pub fn value(&self) -> Option<&Value> {
        self.0.as_ref()
    }

    /// The answer value, if any.
    pub fn into_value(self) -> Option<Value> {
        self.0
    }

    /// The answer as text: the string itself, other JSON as JSON text, `""` when none.
    pub fn text(&self) -> String {
        match &self.0 {
            None => String::new(),
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        }
    }

    /// Deserializes the answer into `T` (a string answer holding JSON is parsed first).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match &self.0 {
            Some(Value::String(text)) => serde_json::from_str(text)
                .or_else(|_| serde_json::from_value(Value::String(text.clone()))),
            Some(other) => serde_json::from_value(other.clone()),
            None => serde_json::from_value(Value::Null),
        }
    }
}

/// What a scenario function may return.
pub trait IntoEvaluation {
    /// The evaluation, or why the evaluation failed.
    fn into_evaluation(self) -> Result<Evaluation, String>;
}

impl IntoEvaluation for Evaluation {
    fn into_evaluation(self) -> Result<Evaluation, String> {
        Ok(self)
    }
}

impl IntoEvaluation for f64 {
    fn into_evaluation(self) -> Result<Evaluation, String> {
        Ok(Evaluation::reward(self))
    }
}

impl IntoEvaluation for f32 {
    fn into_evaluation(self) -> Result<Evaluation, String> {
        Ok(Evaluation::reward(f64::from(self)))
    }
}

impl<T: IntoEvaluation, E: fmt::Display> IntoEvaluation for Result<T, E> {
    fn into_evaluation(self) -> Result<Evaluation, String> {
        self.map_err(|error| error.to_string())
            .and_then(IntoEvaluation::into_evaluation)
    }
}

/// Locks a mutex whose data stays valid even if a holder panicked.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answer_text_and_parse() {
        assert_eq!(Answer::default().text(), "");
        assert_eq!(Answer::new(Some(json!("It is 391."))).text(), "It is 391.");
        assert_eq!(Answer::new(Some(json!([1, 2]))).text(), "[1,2]");
        assert_eq!(Answer::new(Some(json!("6"))).parse::<i64>().unwrap(), 6);
        assert_eq!(
            Answer::new(Some(json!("six"))).parse::<String>().unwrap(),
            "six"
        );
        assert_eq!(
            Answer::new(Some(json!([1, 2])))
                .parse::<Vec<i64>>()
                .unwrap(),
            vec![1, 2]
        );
    }

    #[test]
    fn meta_lists_options_only_when_set() {
        let plain = Scenario::new("s", "", |_: super::super::NoArgs, _ctx| async { 1.0 });
        assert!(plain.meta().is_empty());
        assert_eq!(plain.description, "Scenario: s");
        let filtered = plain
            .exclude_tools(["*"])
            .allowed_tools(["ping"])
            .required_env_vars(["KEY"]);
        assert_eq!(
            Value::Object(filtered.meta()),
            json!({"exclude_tools": ["*"], "allowed_tools": ["ping"], "required_env_vars": ["KEY"]})
        );
    }
}
