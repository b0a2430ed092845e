//! A fake model provider on loopback that speaks both real wire formats:
//! `POST /v1/messages` (Anthropic Messages) and `POST /v1/chat/completions` (OpenAI Chat
//! Completions). Point an Anthropic client at [`FakeModelServer::base_url`] and an
//! OpenAI-style client at `{base_url}/v1`.
//!
//! Replies come from a script ([`FakeReply`]s pushed in order) or, when the script is empty,
//! from a stateless [`Policy`]. Every request is captured for assertions. Requests are also
//! checked like the real APIs check them (every tool call answered by a tool result right
//! after, no orphan results, no empty text blocks); a violation gets the provider's 400.
//!
//! Usage in every successful reply is deterministic, so tests can compute expected sums from
//! [`FakeModelServer::requests`]: input tokens = `100 + 10 * n` where `n` is the length of the
//! request's `messages` array as sent (for OpenAI it includes the system message; Anthropic
//! sends the system prompt outside `messages`), and output tokens = `20`. See
//! [`CapturedRequest::expected_usage`].

mod anthropic;
mod openai;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Input tokens reported for a request with no messages.
pub const BASE_INPUT_TOKENS: u64 = 100;
/// Input tokens added per message of the request.
pub const INPUT_TOKENS_PER_MESSAGE: u64 = 10;
/// Output tokens reported for every reply.
pub const OUTPUT_TOKENS: u64 = 20;

/// One scripted reply, rendered in the wire format of the request that consumes it.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeReply {
    /// Calls these tools: `(name, arguments)`. Ids are `toolu_<n>` (Anthropic) or `call_<n>`
    /// (OpenAI), with `n` counting tool calls over the server's life from 1.
    ToolCalls(Vec<(String, Value)>),
    /// A final text answer (`end_turn` / `stop`).
    Text(String),
    /// Text cut off by the output limit (`max_tokens` / `length`).
    Truncated(String),
    /// An HTTP error. An object `body` with an `error` key is sent as it is; anything else is
    /// the message, wrapped in the provider's error shape for `status`.
    Error {
        status: u16,
        retry_after_secs: Option<u64>,
        body: Value,
    },
    /// This exact JSON body with status 200, for shapes the other variants cannot express.
    Raw(Value),
    /// `reply`, sent after `delay` (a slow provider, or a call still in flight).
    Delayed {
        delay: Duration,
        reply: Box<FakeReply>,
    },
}

impl FakeReply {
    /// A reply calling one tool.
    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Self {
        Self::ToolCalls(vec![(name.into(), arguments)])
    }

    /// A final text answer.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// An error with this message, in the provider's error shape.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::Error {
            status,
            retry_after_secs: None,
            body: Value::String(message.into()),
        }
    }

    /// `reply`, sent only after `delay`.
    pub fn delayed(delay: Duration, reply: FakeReply) -> Self {
        Self::Delayed {
            delay,
            reply: Box::new(reply),
        }
    }

    /// A 429 asking the client to wait `retry_after_secs`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::Error {
            status: 429,
            retry_after_secs: Some(retry_after_secs),
            body: Value::String("rate limit reached (fake)".into()),
        }
    }
}

/// How the server answers when its script is empty.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// Stateless: counts the tool results in the request; while fewer than `steps`, calls
    /// `tool` with `arguments`; then answers `"The answer is <last tool result text>."`.
    ToolStepsThenAnswer {
        tool: String,
        arguments: Value,
        steps: usize,
    },
}

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturedRequest {
    /// `"anthropic"` or `"openai"`.
    pub wire: &'static str,
    /// Every header, names lower case.
    pub headers: Vec<(String, String)>,
    /// The JSON body (a string holding the raw text if it was not JSON).
    pub body: Value,
}

impl CapturedRequest {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The `messages` array of the body.
    pub fn messages(&self) -> &[Value] {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// The `(input, output)` tokens a successful reply to this request reports.
    pub fn expected_usage(&self) -> (u64, u64) {
        usage_for(self.messages().len())
    }
}

/// The fake provider. The server stops when this value is dropped.
pub struct FakeModelServer {
    base_url: String,
    state: Arc<ServerState>,
    task: JoinHandle<()>,
}

struct ServerState {
    policy: Option<Policy>,
    /// Added before every reply, in milliseconds (a slow provider).
    delay_ms: AtomicU64,
    /// Requests whose client went away before their (delayed) reply was sent.
    abandoned: AtomicU64,
    script: Mutex<VecDeque<FakeReply>>,
    requests: Mutex<Vec<CapturedRequest>>,
    tool_call_ids: AtomicU64,
    response_ids: AtomicU64,
}

impl FakeModelServer {
    /// A server in scripted mode with an empty script: push replies before calling it.
    pub async fn start() -> anyhow::Result<Self> {
        Self::spawn(None).await
    }

    /// A server that answers by `policy` whenever its script is empty.
    pub async fn start_with_policy(policy: Policy) -> anyhow::Result<Self> {
        Self::spawn(Some(policy)).await
    }

    async fn spawn(policy: Option<Policy>) -> anyhow::Result<Self> {
        let state = Arc::new(ServerState {
            policy,
            delay_ms: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            script: Mutex::default(),
            requests: Mutex::default(),
            tool_call_ids: AtomicU64::new(0),
            response_ids: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/v1/messages", post(anthropic_handler))
            .route("/v1/chat/completions", post(openai_handler))
            .layer(DefaultBodyLimit::disable())
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        // TCP_NODELAY, as a real provider's front end: replies do not wait for delayed ACKs.
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|stream| drop(stream.set_nodelay(true)));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base_url: format!("http://{address}"),
            state,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`; OpenAI-style clients need `{base_url}/v1`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Appends replies to the script.
    pub fn push(&self, replies: impl IntoIterator<Item = FakeReply>) {
        lock(&self.state.script).extend(replies);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<CapturedRequest> {
        lock(&self.state.requests).clone()
    }

    /// Delays every later reply by `delay` (a slow provider).
    pub fn set_delay(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.state.delay_ms.store(millis, Ordering::SeqCst);
    }

    /// How many requests were dropped by their client while their reply was delayed: a
    /// model call abandoned in flight (a cancelled or abandoned run).
    pub fn abandoned(&self) -> u64 {
        self.state.abandoned.load(Ordering::SeqCst)
    }

    /// How many scripted replies have not been consumed.
    pub fn remaining(&self) -> usize {
        lock(&self.state.script).len()
    }
}

impl Drop for FakeModelServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The two wire formats, with what differs between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Anthropic,
    OpenAi,
}

impl Wire {
    fn name(self) -> &'static str {
        match self {
            Wire::Anthropic => "anthropic",
            Wire::OpenAi => "openai",
        }
    }

    fn validate(self, body: &Value) -> Result<(), String> {
        match self {
            Wire::Anthropic => anthropic::validate(body),
            Wire::OpenAi => openai::validate(body),
        }
    }

    fn tool_results(self, body: &Value) -> Vec<String> {
        match self {
            Wire::Anthropic => anthropic::tool_results(body),
            Wire::OpenAi => openai::tool_results(body),
        }
    }

    fn error_body(self, status: u16, message: &str) -> Value {
        match self {
            Wire::Anthropic => anthropic::error_body(status, message),
            Wire::OpenAi => openai::error_body(status, message),
        }
    }
}

/// A successful reply, before rendering in a wire format.
enum Answer<'a> {
    ToolCalls(&'a [(String, Value)]),
    Text { text: &'a str, truncated: bool },
}

/// What a rendered success reply needs besides the reply itself.
struct ReplyContext<'a> {
    model: &'a str,
    response_id: u64,
    input_tokens: u64,
    state: &'a ServerState,
}

impl ReplyContext<'_> {
    /// The next tool call number.
    fn next_tool_call(&self) -> u64 {
        self.state.tool_call_ids.fetch_add(1, Ordering::SeqCst) + 1
    }
}

async fn anthropic_handler(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(&state, Wire::Anthropic, &headers, &body).await
}

async fn openai_handler(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(&state, Wire::OpenAi, &headers, &body).await
}

/// Counts the request as abandoned if it is dropped (its client went away) while waiting.
struct InFlight<'a> {
    state: &'a ServerState,
    answered: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.state.abandoned.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The reply to one request, sent after its delay (the server's, plus a `Delayed` reply's).
async fn respond(state: &ServerState, wire: Wire, headers: &HeaderMap, raw: &[u8]) -> Response {
    let (delay, response) = handle(state, wire, headers, raw);
    let delay = delay + Duration::from_millis(state.delay_ms.load(Ordering::SeqCst));
    if !delay.is_zero() {
        let mut in_flight = InFlight {
            state,
            answered: false,
        };
        tokio::time::sleep(delay).await;
        in_flight.answered = true;
    }
    response
}

/// The reply to a request, and how long a `Delayed` reply asks to wait before sending it.
fn handle(
    state: &ServerState,
    wire: Wire,
    headers: &HeaderMap,
    raw: &[u8],
) -> (Duration, Response) {
    let parsed = serde_json::from_slice::<Value>(raw);
    let body = parsed.as_ref().map_or_else(
        |_| Value::String(String::from_utf8_lossy(raw).into_owned()),
        Clone::clone,
    );
    let captured_headers = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    lock(&state.requests).push(CapturedRequest {
        wire: wire.name(),
        headers: captured_headers,
        body: body.clone(),
    });
    if let Err(error) = parsed {
        let message = Value::String(format!("invalid JSON body: {error}"));
        return (Duration::ZERO, error_response(wire, 400, None, &message));
    }
    if let Err(problem) = wire.validate(&body) {
        return (
            Duration::ZERO,
            error_response(wire, 400, None, &Value::String(problem)),
        );
    }
    let Some(mut reply) = next_reply(state, wire, &body) else {
        let message = "fake model server: the script is empty; push more replies";
        return (
            Duration::ZERO,
            error_response(wire, 500, None, &Value::String(message.into())),
        );
    };
    let mut delay = Duration::ZERO;
    while let FakeReply::Delayed {
        delay: wait,
        reply: inner,
    } = reply
    {
        delay += wait;
        reply = *inner;
    }
    let message_count = body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let context = ReplyContext {
        model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("fake-model"),
        response_id: state.response_ids.fetch_add(1, Ordering::SeqCst) + 1,
        input_tokens: usage_for(message_count).0,
        state,
    };
    let answer = match &reply {
        FakeReply::Error {
            status,
            retry_after_secs,
            body,
        } => {
            return (
                delay,
                error_response(wire, *status, *retry_after_secs, body),
            );
        }
        FakeReply::Raw(body) => {
            return (
                delay,
                (StatusCode::OK, axum::Json(body.clone())).into_response(),
            );
        }
        FakeReply::Delayed { .. } => unreachable!("delays were unwrapped above"),
        FakeReply::ToolCalls(calls) => Answer::ToolCalls(calls),
        FakeReply::Text(text) => Answer::Text {
            text,
            truncated: false,
        },
        FakeReply::Truncated(text) => Answer::Text {
            text,
            truncated: true,
        },
    };
    let rendered = match wire {
        Wire::Anthropic => anthropic::render(&answer, &context),
        Wire::OpenAi => openai::render(&answer, &context),
    };
    (
        delay,
        (StatusCode::OK, axum::Json(rendered)).into_response(),
    )
}

fn next_reply(state: &ServerState, wire: Wire, body: &Value) -> Option<FakeReply> {
    if let Some(reply) = lock(&state.script).pop_front() {
        return Some(reply);
    }
    let Policy::ToolStepsThenAnswer {
        tool,
        arguments,
        steps,
    } = state.policy.as_ref()?;
    let results = wire.tool_results(body);
    if results.len() < *steps {
        return Some(FakeReply::ToolCalls(vec![(
            tool.clone(),
            arguments.clone(),
        )]));
    }
    let last = results.last().map_or("", String::as_str);
    Some(FakeReply::Text(format!("The answer is {last}.")))
}

fn error_response(
    wire: Wire,
    status: u16,
    retry_after_secs: Option<u64>,
    body: &Value,
) -> Response {
    let body = match body {
        Value::Object(object) if object.contains_key("error") => body.clone(),
        Value::String(message) => wire.error_body(status, message),
        other => wire.error_body(status, &other.to_string()),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(seconds) = retry_after_secs {
        response.headers_mut().insert("retry-after", seconds.into());
    }
    response
}

fn usage_for(message_count: usize) -> (u64, u64) {
    let count = u64::try_from(message_count).unwrap_or(u64::MAX);
    (
        BASE_INPUT_TOKENS + INPUT_TOKENS_PER_MESSAGE * count,
        OUTPUT_TOKENS,
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The text of a tool result's content: a string, or the text blocks of an array.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
