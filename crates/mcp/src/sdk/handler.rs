//! The MCP server handler of an SDK environment: one per MCP session, holding that session's
//! active scenario (protocol §6), and answering the hud 0.5 scenario protocol.

use super::names::fnmatch;
use super::pyjson::to_python_json;
use super::scenario::{Scenario, lock};
use super::schema::{ArgsSchema, decode_untyped};
use super::session::{self, ActiveScenario, StartError};
use super::state::{SessionState, ToolContext};
use super::tool::{Tool, ToolOutput};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode,
    GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation, ListPromptsResult,
    ListResourcesResult, ListToolsResult, MetaObject, PaginatedRequestParams, Prompt,
    PromptArgument, PromptMessage, ProtocolVersion, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, Role, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

/// The hidden tool through which clients hand in the answer (protocol §5.4).
pub(crate) const SUBMIT_TOOL: &str = "_hud_submit";

/// What every session of one environment shares: its name, tools and scenarios.
pub(crate) struct EnvCore {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) tools: Vec<Tool>,
    pub(crate) scenarios: Vec<Arc<Scenario>>,
    submit_schema: ArgsSchema,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Only its schema is used: the handler reads the validated JSON directly.
struct SubmitArgs {
    scenario: String,
    answer: String,
}

impl EnvCore {
    pub(crate) fn new(
        name: String,
        version: String,
        tools: Vec<Tool>,
        scenarios: Vec<Arc<Scenario>>,
    ) -> Self {
        Self {
            name,
            version,
            tools,
            scenarios,
            submit_schema: ArgsSchema::for_type::<SubmitArgs>(),
        }
    }

    fn scenario_id(&self, scenario: &Scenario) -> String {
        format!("{}:{}", self.name, scenario.name)
    }

    fn scenario(&self, name: &str) -> Option<&Arc<Scenario>> {
        self.scenarios.iter().find(|scenario| scenario.name == name)
    }

    /// hud's message for a prompt with this env's prefix but an unknown scenario.
    fn scenario_not_found(&self, requested: &str) -> String {
        let ids: Vec<String> = self.scenarios.iter().map(|s| self.scenario_id(s)).collect();
        let available = if ids.is_empty() {
            "(none)".to_owned()
        } else {
            ids.join("\n    ")
        };
        format!(
            "⚠️ ERROR: Scenario not found.\n\n\
             Scenario IDs have the format 'environment_name:scenario_name'.\n\
             If you only specify 'scenario_name', the SDK uses your task's env name as the prefix.\n\
             This won't work if the HUD environment was declared with a different name.\n\n  \
             You requested: {requested}\n  \
             SDK looked for: {}:{requested}\n\n\
             Available scenarios:\n    {available}\n\n\
             Fix: Use one of the scenario IDs above in your task JSON.",
            self.name
        )
    }
}

/// The `ServerHandler` of one MCP session.
pub(crate) struct EnvHandler {
    core: Arc<EnvCore>,
    active: Mutex<Option<ActiveScenario>>,
    /// State shared by this session's tools and scenarios.
    state: SessionState,
}

impl EnvHandler {
    pub(crate) fn new(core: Arc<EnvCore>) -> Self {
        Self {
            core,
            active: Mutex::new(None),
            state: SessionState::default(),
        }
    }

    /// Whether `tool` may be listed and called now (protocol §5.3); `_` tools always may.
    fn tool_allowed(&self, tool: &str) -> bool {
        if tool.starts_with('_') {
            return true;
        }
        let active = lock(&self.active);
        let Some(active) = active.as_ref() else {
            return true;
        };
        let scenario = &active.scenario;
        let excluded = scenario
            .exclude_tools
            .iter()
            .any(|pattern| fnmatch(pattern, tool));
        !excluded
            || scenario
                .allowed_tools
                .iter()
                .any(|pattern| fnmatch(pattern, tool))
    }

    fn submit(&self, arguments: &Value) -> ToolOutput {
        if let Err(message) = self.core.submit_schema.validate(arguments) {
            return ToolOutput::error(format!("Input validation error: {message}"));
        }
        let scenario = arguments
            .get("scenario")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let answer = arguments
            .get("answer")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let local = scenario.rsplit(':').next().unwrap_or(scenario);
        let mut active = lock(&self.active);
        match active.as_mut() {
            None => ToolOutput::error(format!(
                "Error calling tool '{SUBMIT_TOOL}': No active scenario session for '{local}'"
            )),
            Some(active) if active.scenario.name != local => ToolOutput::error(format!(
                "Error calling tool '{SUBMIT_TOOL}': Scenario mismatch: active is '{}', but received answer for '{local}'",
                active.scenario.name
            )),
            Some(active) => {
                active.submitted = Some(decode_untyped(answer));
                ToolOutput::text(format!("Answer submitted for scenario '{local}'"))
            }
        }
    }

    fn scenario_meta(scenario: &Scenario) -> Option<MetaObject> {
        let meta = scenario.meta();
        (!meta.is_empty()).then_some(MetaObject(meta))
    }
}

/// A JSON-RPC error as hud's server sends them: code 0 and a message.
fn hud_error(message: impl Into<Cow<'static, str>>, data: Option<Value>) -> ErrorData {
    ErrorData::new(ErrorCode(0), message, data)
}

fn to_call_result(output: ToolOutput) -> CallToolResult {
    let content = output.texts.into_iter().map(ContentBlock::text).collect();
    if output.is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    }
}

impl ServerHandler for EnvHandler {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_prompts()
            .enable_resources()
            .enable_tools()
            .build();
        let mut info = ServerConfig::new(capabilities);
        info.server_info = Implementation::new(self.core.name.clone(), self.core.version.clone());
        info.protocol_version = ProtocolVersion::LATEST_WITH_INITIALIZE;
        info
    }

    /// hud keeps scenario state per MCP session, so stay on the versions that have sessions
    /// (2026-07-28 removes them).
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(
            &ProtocolVersion::LATEST_WITH_INITIALIZE,
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self
            .core
            .tools
            .iter()
            .filter(|tool| !tool.name.starts_with('_') && self.tool_allowed(&tool.name))
            .map(|tool| {
                rmcp::model::Tool::new(
                    tool.name.clone(),
                    tool.description.clone(),
                    Arc::new(tool.schema.schema().clone()),
                )
            })
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.as_ref();
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        let output = if name == SUBMIT_TOOL {
            self.submit(&arguments)
        } else {
            match self.core.tools.iter().find(|tool| tool.name == name) {
                None => ToolOutput::error(format!("Unknown tool: '{name}'")),
                Some(_) if !self.tool_allowed(name) => ToolOutput::error(format!(
                    "Tool '{name}' is not available in the current scenario."
                )),
                Some(tool) => {
                    let context = ToolContext {
                        state: self.state.clone(),
                    };
                    tool.call(arguments, context).await
                }
            }
        };
        Ok(to_call_result(output).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let prompts = self
            .core
            .scenarios
            .iter()
            .map(|scenario| {
                let arguments = scenario
                    .schema
                    .prompt_arguments()
                    .map(|(name, required)| PromptArgument::new(name).with_required(required))
                    .collect();
                let mut prompt = Prompt::new(
                    self.core.scenario_id(scenario),
                    Some(format!("[Setup] {}", scenario.description)),
                    Some(arguments),
                );
                prompt.meta = Self::scenario_meta(scenario);
                prompt
            })
            .collect();
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let name = request.name;
        let scenario_name = match name.split_once(':') {
            Some((prefix, rest)) if prefix == self.core.name => rest,
            _ => return Err(hud_error(format!("Prompt not found: {name}"), None)),
        };
        let Some(scenario) = self.core.scenario(scenario_name) else {
            return Err(hud_error(self.core.scenario_not_found(scenario_name), None));
        };
        let scenario_id = self.core.scenario_id(scenario);
        let raw_arguments = request.arguments.unwrap_or_default();
        let arguments = Value::Object(scenario.schema.decode_prompt_arguments(&raw_arguments));
        let invalid = |message: String| {
            ErrorData::invalid_params(
                format!("invalid arguments for scenario '{scenario_id}': {message}"),
                Some(json!({"arguments": raw_arguments})),
            )
        };
        scenario.schema.validate(&arguments).map_err(invalid)?;
        let (prompt, active) = match session::start(
            scenario.clone(),
            scenario_id.clone(),
            arguments,
            self.state.clone(),
        )
        .await
        {
            Ok(started) => started,
            Err(StartError::InvalidArguments(message)) => return Err(invalid(message)),
            Err(StartError::Setup(message)) => return Err(hud_error(message, None)),
        };
        // Replacing the previous scenario drops it, which aborts its task (hud drops its
        // generator the same way).
        let previous = lock(&self.active).replace(active);
        drop(previous);
        let message = PromptMessage::new_text(Role::User, prompt);
        let mut result = GetPromptResult::new(vec![message]);
        let meta = scenario.setup_meta();
        if !meta.is_empty() {
            result.meta = Some(MetaObject(meta));
        }
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let resources = self
            .core
            .scenarios
            .iter()
            .map(|scenario| {
                let mut resource =
                    Resource::new(self.core.scenario_id(scenario), scenario.name.clone())
                        .with_description(format!("[Evaluate] {}", scenario.description))
                        .with_mime_type("application/json");
                resource.meta = Self::scenario_meta(scenario);
                resource
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri;
        // hud hides the cause behind one message; the cause travels in `data` for humans.
        let not_found = |reason: &str| {
            hud_error(
                format!("Resource not found: {uri}"),
                Some(json!({"reason": reason})),
            )
        };
        let known = self
            .core
            .scenarios
            .iter()
            .any(|s| self.core.scenario_id(s) == uri);
        if !known {
            return Err(not_found("no scenario has this uri"));
        }
        let Some(active) = lock(&self.active).take() else {
            return Err(not_found(
                "no active scenario in this session (prompts/get first)",
            ));
        };
        let evaluation = match session::evaluate(active).await {
            Ok(evaluation) => evaluation,
            Err(reason) => {
                tracing::warn!(%uri, %reason, "scenario evaluation failed");
                return Err(not_found(&reason));
            }
        };
        let text = to_python_json(&evaluation)
            .map_err(|error| not_found(&format!("evaluation is not serializable: {error}")))?;
        let contents = vec![ResourceContents::TextResourceContents {
            uri,
            mime_type: None,
            text,
            meta: None,
        }];
        Ok(ReadResourceResult::new(contents).into())
    }
}
