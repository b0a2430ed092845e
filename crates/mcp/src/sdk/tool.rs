//! Tools: typed async functions exposed as MCP tools.

use super::schema::ArgsSchema;
use super::state::ToolContext;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

type ToolFuture = Pin<Box<dyn Future<Output = ToolOutput> + Send>>;
type ToolFn = dyn Fn(Value, ToolContext) -> ToolFuture + Send + Sync;

/// An MCP tool: a name, a description for the model, and a typed async function.
///
/// The arguments type `A` provides the `inputSchema` (via `schemars`, shaped like FastMCP's:
/// an object with `additionalProperties: false`). Calls whose arguments do not fit get an
/// `isError` result `Input validation error: ...`, as on hud servers.
///
/// Names starting with `_` are hidden from `tools/list` but stay callable (hud's convention
/// for infrastructure tools).
#[derive(Clone)]
pub struct Tool {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) schema: Arc<ArgsSchema>,
    handler: Arc<ToolFn>,
}

impl Tool {
    /// A tool: a typed async function of its arguments. `A`'s JSON Schema is the tool's
    /// `inputSchema`; arguments that do not fit get an `isError` result.
    pub fn new<A, F, Fut>(
        name: impl Into<String>,
        description: impl Into<String>,
        function: F,
    ) -> Self
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoToolOutput,
    {
        Self::with_context(name, description, move |args: A, _context: ToolContext| {
            function(args)
        })
    }

    /// A tool that also gets its MCP session's [`ToolContext`], for state shared with the
    /// other tools and the scenario of the same session (`context.state::<T>()`).
    pub fn with_context<A, F, Fut>(
        name: impl Into<String>,
        description: impl Into<String>,
        function: F,
    ) -> Self
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(A, ToolContext) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoToolOutput,
    {
        let name = name.into();
        let tool_name = name.clone();
        let handler = move |arguments: Value, context: ToolContext| -> ToolFuture {
            match serde_json::from_value::<A>(arguments) {
                Ok(args) => {
                    let future = function(args, context);
                    let tool_name = tool_name.clone();
                    Box::pin(async move { future.await.into_tool_output(&tool_name) })
                }
                Err(error) => {
                    let output = ToolOutput::error(format!("Input validation error: {error}"));
                    Box::pin(std::future::ready(output))
                }
            }
        };
        Self {
            name,
            description: description.into(),
            schema: Arc::new(ArgsSchema::for_type::<A>()),
            handler: Arc::new(handler),
        }
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tool's `inputSchema`.
    pub fn input_schema(&self) -> Value {
        Value::Object(self.schema.schema().clone())
    }

    /// Validates `arguments` against the schema, then runs the tool.
    pub(crate) async fn call(&self, arguments: Value, context: ToolContext) -> ToolOutput {
        if let Err(message) = self.schema.validate(&arguments) {
            return ToolOutput::error(format!("Input validation error: {message}"));
        }
        (self.handler)(arguments, context).await
    }
}

impl fmt::Debug for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What a tool call returns: text content blocks, and whether it is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    pub(crate) texts: Vec<String>,
    pub(crate) is_error: bool,
}

impl ToolOutput {
    /// One text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            texts: vec![text.into()],
            is_error: false,
        }
    }

    /// One text block holding `value` as compact JSON (what FastMCP sends for dict results).
    /// A value that cannot be serialized gives an error output saying so.
    pub fn json<T: Serialize>(value: &T) -> Self {
        match serde_json::to_string(value) {
            Ok(text) => Self::text(text),
            Err(error) => Self::error(format!("tool result is not serializable as JSON: {error}")),
        }
    }

    /// An `isError` result whose text is shown to the model as is.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            texts: vec![text.into()],
            is_error: true,
        }
    }

    /// Adds another text block.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.texts.push(text.into());
        self
    }

    /// The text blocks.
    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    /// Whether this is an `isError` result.
    pub fn is_error(&self) -> bool {
        self.is_error
    }
}

/// A tool failure with a message; returned as `Err` from a tool function.
///
/// Any `Display` error works as well; this type exists for tools without an error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolFailure(String);

impl ToolFailure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for ToolFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ToolFailure {}

impl From<String> for ToolFailure {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for ToolFailure {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

/// What a tool function may return.
pub trait IntoToolOutput {
    /// Converts into the call result; `tool_name` is for error messages.
    fn into_tool_output(self, tool_name: &str) -> ToolOutput;
}

impl IntoToolOutput for ToolOutput {
    fn into_tool_output(self, _tool_name: &str) -> ToolOutput {
        self
    }
}

impl IntoToolOutput for String {
    fn into_tool_output(self, _tool_name: &str) -> ToolOutput {
        ToolOutput::text(self)
    }
}

impl IntoToolOutput for &'static str {
    fn into_tool_output(self, _tool_name: &str) -> ToolOutput {
        ToolOutput::text(self)
    }
}

impl<T: IntoToolOutput, E: fmt::Display> IntoToolOutput for Result<T, E> {
    fn into_tool_output(self, tool_name: &str) -> ToolOutput {
        match self {
            Ok(output) => output.into_tool_output(tool_name),
            Err(error) => ToolOutput::error(format!("Error calling tool '{tool_name}': {error}")),
        }
    }
}

/// Arguments of a tool or scenario that takes none (`{}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, JsonSchema)]
pub struct NoArgs {}
