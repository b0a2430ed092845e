//! The SDK's server side of the hud 0.5 scenario protocol, driven by an rmcp client over an
//! in-process pipe: the test environment, helpers, and discovery and tool calls.

use rmcp::model::{
    CallToolRequestParams, CallToolResult, GetPromptRequestParams, ReadResourceRequestParams,
};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceError, ServiceExt};
use rollout_mcp::sdk::{
    Environment, Evaluation, NoArgs, Scenario, ScenarioContext, Tool, ToolFailure, ToolOutput,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    a: i64,
    b: i64,
}

#[derive(Deserialize, JsonSchema)]
struct QueryArgs {
    query: String,
}

#[derive(Deserialize, JsonSchema)]
struct SumArgs {
    numbers: Vec<i64>,
    #[serde(default = "default_note")]
    note: String,
    #[serde(default)]
    strict: bool,
}

fn default_note() -> String {
    "none".into()
}

/// A test environment covering the protocol's corners.
pub(crate) fn test_env() -> Environment {
    Environment::new("Test Env")
        .tool(Tool::new(
            "add",
            "Add two integers.",
            |args: AddArgs| async move {
                Ok::<_, ToolFailure>(ToolOutput::text((args.a + args.b).to_string()))
            },
        ))
        .tool(Tool::new("fail", "Always fails.", |_: NoArgs| async move {
            Err::<String, _>(ToolFailure::new("boom"))
        }))
        .tool(Tool::new(
            "lookup",
            "Look something up.",
            |args: QueryArgs| async move {
                ToolOutput::json(&json!({"query": args.query, "found": false}))
            },
        ))
        .tool(Tool::new(
            "_peek",
            "Hidden helper.",
            |_: NoArgs| async move { "peeked" },
        ))
        .scenario(Scenario::new(
            "answer_question",
            "Answer a question.",
            |args: QueryArgs, ctx: ScenarioContext| async move {
                let answer = ctx
                    .prompt(format!("Answer this question: {}", args.query))
                    .await;
                let correct = answer.text().contains("391");
                let reward = if correct { 1.0 } else { 0.0 };
                Evaluation::reward(reward)
                    .with_content(format!("expected='391' got='{}'", answer.text()))
                    .with_info("answer", answer.text())
                    .with_info("submitted", answer.is_submitted())
                    .with_subscore("correct", 1.0, reward)
            },
        ))
        .scenario(
            Scenario::new(
                "sum_numbers",
                "Add up a list of numbers.",
                |args: SumArgs, ctx: ScenarioContext| async move {
                    let total: i64 = args.numbers.iter().sum();
                    let answer = ctx
                        .prompt(format!("Sum {:?} ({})", args.numbers, args.note))
                        .await;
                    let ok = answer.parse::<i64>().ok() == Some(total);
                    if ok || !args.strict { 1.0 } else { 0.0 }
                },
            )
            .exclude_tools(["look*", "fail"])
            .allowed_tools(["fail"]),
        )
        .scenario(Scenario::new(
            "no_prompt",
            "",
            |_: NoArgs, _ctx: ScenarioContext| async move { 1.0 },
        ))
        .scenario(Scenario::new(
            "broken",
            "Fails in setup.",
            |_: NoArgs, _ctx: ScenarioContext| async move { Err::<f64, _>("boom in setup") },
        ))
}

pub(crate) type Client = RunningService<RoleClient, ()>;

/// Serves `env` on one end of a duplex pipe and connects an rmcp client to the other.
pub(crate) async fn connect(env: Environment) -> Client {
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let _ = env.serve_io(server_io).await;
    });
    tokio::time::timeout(WAIT, ().serve(client_io))
        .await
        .unwrap()
        .unwrap()
}

fn args(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

pub(crate) async fn get_prompt(
    client: &Client,
    name: &str,
    arguments: Value,
) -> Result<String, ServiceError> {
    let params = GetPromptRequestParams::new(name).with_arguments(args(arguments));
    let result = tokio::time::timeout(WAIT, client.get_prompt(params))
        .await
        .unwrap()?;
    let value = serde_json::to_value(&result).unwrap();
    assert_eq!(value["messages"].as_array().unwrap().len(), 1, "{value}");
    assert_eq!(value["messages"][0]["role"], "user");
    Ok(value["messages"][0]["content"]["text"]
        .as_str()
        .unwrap()
        .to_owned())
}

pub(crate) async fn call(client: &Client, name: &str, arguments: Value) -> (bool, String) {
    let params = CallToolRequestParams::new(name.to_owned()).with_arguments(args(arguments));
    let result: CallToolResult = tokio::time::timeout(WAIT, client.call_tool(params))
        .await
        .unwrap()
        .unwrap();
    let texts: Vec<String> = result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.clone())
        .collect();
    (result.is_error.unwrap_or(false), texts.join("\n"))
}

pub(crate) async fn read(client: &Client, uri: &str) -> Result<String, ServiceError> {
    let params = ReadResourceRequestParams::new(uri);
    let result = tokio::time::timeout(WAIT, client.read_resource(params))
        .await
        .unwrap()?;
    let value = serde_json::to_value(&result).unwrap();
    assert_eq!(value["contents"][0]["uri"], uri);
    assert!(value["contents"][0].get("mimeType").is_none(), "{value}");
    Ok(value["contents"][0]["text"].as_str().unwrap().to_owned())
}

pub(crate) fn mcp_error(error: ServiceError) -> (i32, String) {
    match error {
        ServiceError::McpError(data) => (data.code.0, data.message.into_owned()),
        other => panic!("expected a JSON-RPC error, got {other}"),
    }
}

pub(crate) async fn tool_names(client: &Client) -> Vec<String> {
    let tools = tokio::time::timeout(WAIT, client.list_all_tools())
        .await
        .unwrap()
        .unwrap();
    tools
        .into_iter()
        .map(|tool| tool.name.into_owned())
        .collect()
}

#[tokio::test]
async fn initialize_reports_the_normalized_name_and_capabilities() {
    let client = connect(test_env()).await;
    let info = client.peer_info().unwrap();
    let info = serde_json::to_value(info).unwrap();
    assert_eq!(info["serverInfo"]["name"], "test-env");
    assert!(info["capabilities"].get("prompts").is_some(), "{info}");
    assert!(info["capabilities"].get("resources").is_some(), "{info}");
    assert!(info["capabilities"].get("tools").is_some(), "{info}");
    assert_eq!(info["protocolVersion"], "2025-11-25");
}

#[tokio::test]
async fn prompts_and_resources_are_listed_like_hud() {
    let client = connect(test_env()).await;
    let prompts = tokio::time::timeout(WAIT, client.list_all_prompts())
        .await
        .unwrap()
        .unwrap();
    let prompts: Vec<Value> = prompts
        .iter()
        .map(|p| serde_json::to_value(p).unwrap())
        .collect();
    assert_eq!(
        prompts[0],
        json!({
            "name": "test-env:answer_question",
            "description": "[Setup] Answer a question.",
            "arguments": [{"name": "query", "required": true}],
            "_meta": {"arguments": [{"name": "query", "required": true, "type": "string"}]}
        })
    );
    assert_eq!(
        prompts[1],
        json!({
            "name": "test-env:sum_numbers",
            "description": "[Setup] Add up a list of numbers.",
            "arguments": [
                {"name": "note", "required": false},
                {"name": "numbers", "required": true},
                {"name": "strict", "required": false}
            ],
            "_meta": {
                "arguments": [
                    {"name": "note", "required": false, "default": "none", "type": "string"},
                    {"name": "numbers", "required": true, "type": "array"},
                    {"name": "strict", "required": false, "default": false, "type": "boolean"}
                ],
                "exclude_tools": ["look*", "fail"],
                "allowed_tools": ["fail"]
            }
        })
    );
    assert_eq!(
        prompts[2],
        json!({"name": "test-env:no_prompt", "description": "[Setup] Scenario: no_prompt", "arguments": []})
    );

    let resources = tokio::time::timeout(WAIT, client.list_all_resources())
        .await
        .unwrap()
        .unwrap();
    let first = serde_json::to_value(&resources[0]).unwrap();
    assert_eq!(
        first,
        json!({
            "uri": "test-env:answer_question",
            "name": "answer_question",
            "description": "[Evaluate] Answer a question.",
            "mimeType": "application/json",
            "_meta": {"arguments": [{"name": "query", "required": true, "type": "string"}]}
        })
    );
    assert_eq!(resources.len(), 4);
}

#[tokio::test]
async fn tools_list_hides_underscore_tools_and_shows_schemas() {
    let client = connect(test_env()).await;
    let tools = tokio::time::timeout(WAIT, client.list_all_tools())
        .await
        .unwrap()
        .unwrap();
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    assert_eq!(names, ["add", "fail", "lookup"]);
    let add = serde_json::to_value(&tools[0]).unwrap();
    assert_eq!(
        add,
        json!({
            "name": "add",
            "description": "Add two integers.",
            "inputSchema": {
                "additionalProperties": false,
                "properties": {
                    "a": {"format": "int64", "type": "integer"},
                    "b": {"format": "int64", "type": "integer"}
                },
                "required": ["a", "b"],
                "type": "object"
            }
        })
    );
    assert_eq!(
        call(&client, "_peek", json!({})).await,
        (false, "peeked".into())
    );
}

#[tokio::test]
async fn tool_calls_return_text_json_and_errors() {
    let client = connect(test_env()).await;
    assert_eq!(
        call(&client, "add", json!({"a": 2, "b": 3})).await,
        (false, "5".into())
    );
    assert_eq!(
        call(&client, "lookup", json!({"query": "x"})).await,
        (false, r#"{"found":false,"query":"x"}"#.into())
    );
    assert_eq!(
        call(&client, "fail", json!({})).await,
        (true, "Error calling tool 'fail': boom".into())
    );
    let (is_error, text) = call(&client, "add", json!({"a": 2})).await;
    assert!(is_error);
    assert_eq!(text, "Input validation error: \"b\" is a required property");
    let (is_error, text) = call(
        &client,
        "add",
        json!({"a": 2, "b": 3, "_hud_trace_id": "t"}),
    )
    .await;
    assert!(is_error);
    assert!(
        text.starts_with("Input validation error: Additional properties are not allowed"),
        "{text}"
    );
    let (is_error, text) = call(&client, "add", json!({"a": "two", "b": 3})).await;
    assert!(is_error);
    assert!(text.starts_with("Input validation error: "), "{text}");
    assert_eq!(
        call(&client, "nope", json!({})).await,
        (true, "Unknown tool: 'nope'".into())
    );
}
