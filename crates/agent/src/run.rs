//! The loop itself.

use crate::error::AgentError;
use rollout_domain::{
    EventKind, EventSink, Message, ModelClient, ModelRequest, RunOutcome, ToolCall, ToolHost,
    ToolResult, ToolSpec, Usage,
};
use tokio::time::Instant;

/// What the loop needs to know besides its ports.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The model name as the run asked for it (recorded in the trace).
    pub model: String,
    /// Step budget: model calls allowed.
    pub max_steps: u32,
    pub system_prompt: Option<String>,
}

/// How the agent phase ended.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentResult {
    /// The final answer, empty when the step budget ran out.
    pub final_answer: String,
    pub outcome: RunOutcome,
    pub steps: u32,
    pub usage: Usage,
    /// The whole conversation, system prompt excluded.
    pub messages: Vec<Message>,
}

/// Runs the agent on `prompt` with `tools` until it answers or runs out of steps.
///
/// Tool calls for tools not in `tools` (hidden `_` tools, made-up names) are refused
/// with an error result instead of reaching the environment.
pub async fn run_agent(
    config: &AgentConfig,
    prompt: &str,
    tools: Vec<ToolSpec>,
    model: &dyn ModelClient,
    host: &dyn ToolHost,
    sink: &dyn EventSink,
) -> Result<AgentResult, AgentError> {
    let mut messages = vec![Message::user(prompt)];
    let mut sent = 0;
    let mut usage = Usage::default();
    let mut request = ModelRequest {
        system: config.system_prompt.clone(),
        messages: Vec::new(),
        tools,
    };
    for step in 1..=config.max_steps {
        request.messages.clone_from(&messages);
        let started = Instant::now();
        let response = model.complete(&request).await?;
        let mut new_messages = messages[sent..].to_vec();
        if step == 1
            && let Some(system) = &config.system_prompt
        {
            new_messages.insert(0, Message::system(system.clone()));
        }
        sent = messages.len() + 1;
        usage.add(&response.usage);
        sink.record(EventKind::ModelCall {
            step,
            model: config.model.clone(),
            upstream_model: response.upstream_model.clone(),
            new_messages,
            response: response.message.clone(),
            stop_reason: response.stop_reason.as_str().to_string(),
            usage: response.usage,
            duration_ms: elapsed_ms(started),
        })
        .await?;
        let calls = response.message.tool_calls.clone();
        messages.push(response.message);
        if calls.is_empty() {
            let final_answer = messages
                .last()
                .map(|m| m.content.clone())
                .unwrap_or_default();
            return Ok(AgentResult {
                final_answer,
                outcome: RunOutcome::Answered,
                steps: step,
                usage,
                messages,
            });
        }
        for call in &calls {
            let result = execute(step, call, &request.tools, host, sink).await?;
            messages.push(Message::tool(&result));
        }
    }
    Ok(AgentResult {
        final_answer: String::new(),
        outcome: RunOutcome::MaxStepsReached,
        steps: config.max_steps,
        usage,
        messages,
    })
}

/// Executes one tool call and records it.
async fn execute(
    step: u32,
    call: &ToolCall,
    tools: &[ToolSpec],
    host: &dyn ToolHost,
    sink: &dyn EventSink,
) -> Result<ToolResult, AgentError> {
    let started = Instant::now();
    let result = if tools.iter().any(|tool| tool.name == call.name) {
        // Tests make a tool call panic here (`FAILPOINTS=agent::tool_call=panic`).
        #[cfg(feature = "failpoints")]
        fail::fail_point!("agent::tool_call");
        host.call_tool(call).await?
    } else {
        ToolResult::error(&call.id, format!("Tool '{}' is not available.", call.name))
    };
    sink.record(EventKind::ToolCall {
        step,
        call_id: call.id.clone(),
        name: call.name.clone(),
        arguments: call.arguments.clone(),
        result: result.clone(),
        duration_ms: elapsed_ms(started),
    })
    .await?;
    Ok(result)
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
