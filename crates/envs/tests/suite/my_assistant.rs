//! `my-assistant` over MCP: its tools, and its scenario from prompt to reward.

use rmcp::model::{CallToolRequestParams, GetPromptRequestParams, ReadResourceRequestParams};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Map, Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

type Client = RunningService<RoleClient, ()>;

async fn connect() -> Client {
    let environment = rollout_envs::by_name("my-assistant").unwrap();
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let _ = environment.serve_io(server_io).await;
    });
    tokio::time::timeout(WAIT, ().serve(client_io))
        .await
        .unwrap()
        .unwrap()
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

async fn call(client: &Client, name: &str, arguments: Value) -> (bool, String) {
    let params = CallToolRequestParams::new(name.to_owned()).with_arguments(object(arguments));
    let result = tokio::time::timeout(WAIT, client.call_tool(params))
        .await
        .unwrap()
        .unwrap();
    let text = result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.as_str())
        .collect();
    (result.is_error.unwrap_or(false), text)
}

/// Runs `answer_question` for `query`, submitting `answer`; returns the evaluation JSON.
async fn run(client: &Client, query: &str, answer: &str) -> Value {
    let params = GetPromptRequestParams::new("my-assistant:answer_question")
        .with_arguments(object(json!({"query": query})));
    let prompt = tokio::time::timeout(WAIT, client.get_prompt(params))
        .await
        .unwrap()
        .unwrap();
    let prompt = serde_json::to_value(&prompt).unwrap();
    let text = prompt["messages"][0]["content"]["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("Answer this question: {query}\n")),
        "{text}"
    );
    let submit = json!({"scenario": "answer_question", "answer": answer});
    assert!(!call(client, "_hud_submit", submit).await.0);
    let params = ReadResourceRequestParams::new("my-assistant:answer_question");
    let result = tokio::time::timeout(WAIT, client.read_resource(params))
        .await
        .unwrap()
        .unwrap();
    let result = serde_json::to_value(&result).unwrap();
    serde_json::from_str(result["contents"][0]["text"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn names_list_the_bundled_environments() {
    assert_eq!(rollout_envs::NAMES, ["my-assistant", "inbox"]);
    assert!(rollout_envs::by_name("nope").is_none());
    let error = rollout_envs::serve_stdio_by_name("nope").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown example environment 'nope' (known: my-assistant, inbox)"
    );
}

#[tokio::test]
async fn tools_compute_and_look_up() {
    let client = connect().await;
    let tools = tokio::time::timeout(WAIT, client.list_all_tools())
        .await
        .unwrap()
        .unwrap();
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    assert_eq!(names, ["calculator", "lookup", "respond"]);
    let schema = serde_json::to_value(&tools[0].input_schema).unwrap();
    assert_eq!(schema["required"], json!(["expression"]));
    assert_eq!(schema["additionalProperties"], json!(false));

    assert_eq!(
        call(&client, "calculator", json!({"expression": "17 * 23"})).await,
        (false, "391".into())
    );
    assert_eq!(
        call(&client, "calculator", json!({"expression": "2 ^ 0.5 * 0"})).await,
        (false, "0".into())
    );
    assert_eq!(
        call(&client, "calculator", json!({"expression": "1 / (3 - 3)"})).await,
        (
            true,
            "Error calling tool 'calculator': division by zero".into()
        )
    );
    assert_eq!(
        call(&client, "lookup", json!({"topic": "Capital of Japan"})).await,
        (false, "Tokyo".into())
    );
    let (is_error, text) = call(&client, "lookup", json!({"topic": "capital of Mars"})).await;
    assert!(is_error);
    assert!(
        text.contains("unknown topic 'capital of Mars'; known topics: capital of France"),
        "{text}"
    );
}

#[tokio::test]
async fn answer_question_rewards_the_right_answer() {
    let client = connect().await;
    let evaluation = run(&client, "What is 17 * 23?", "It is 391.").await;
    assert_eq!(
        evaluation,
        json!({
            "reward": 1.0,
            "done": true,
            "content": "expected '391' in the answer, got 'It is 391.'",
            "info": {"answer": "It is 391.", "expected": "391", "source": "expression"},
            "isError": false,
            "subscores": [{"name": "correct", "weight": 1.0, "value": 1.0}]
        })
    );
    let evaluation = run(&client, "What is the capital of France?", "Lyon").await;
    assert_eq!(evaluation["reward"], json!(0.0));
    assert_eq!(evaluation["info"]["expected"], json!("Paris"));
    let evaluation = run(&client, "Why?", "Because.").await;
    assert_eq!(evaluation["reward"], json!(0.0));
}
