//! The scenario lifecycle of SDK environments: setup, answer hand-in, evaluation, session
//! state and tool filtering.

use super::sdk::{call, connect, get_prompt, mcp_error, read, test_env, tool_names};
use rollout_mcp::sdk::Evaluation;
use serde_json::{Value, json};

#[tokio::test]
async fn a_scenario_runs_from_prompt_to_reward() {
    let client = connect(test_env()).await;
    let prompt = get_prompt(
        &client,
        "test-env:answer_question",
        json!({"query": "What is 17 * 23?"}),
    )
    .await
    .unwrap();
    assert_eq!(prompt, "Answer this question: What is 17 * 23?");
    assert_eq!(
        call(&client, "add", json!({"a": 17, "b": 1})).await,
        (false, "18".into())
    );
    let submitted = call(
        &client,
        "_hud_submit",
        json!({"scenario": "answer_question", "answer": "It is 391."}),
    )
    .await;
    assert_eq!(
        submitted,
        (
            false,
            "Answer submitted for scenario 'answer_question'".into()
        )
    );
    let text = read(&client, "test-env:answer_question").await.unwrap();
    assert_eq!(
        text,
        r#"{"reward": 1.0, "done": true, "content": "expected='391' got='It is 391.'", "info": {"answer": "It is 391.", "submitted": true}, "isError": false, "subscores": [{"name": "correct", "weight": 1.0, "value": 1.0}]}"#
    );

    // The session is consumed: a second read fails like hud's.
    let error = read(&client, "test-env:answer_question").await.unwrap_err();
    assert_eq!(
        mcp_error(error),
        (0, "Resource not found: test-env:answer_question".into())
    );
}

#[tokio::test]
async fn answers_are_decoded_like_hud() {
    let client = connect(test_env()).await;
    let cases = [
        (None, json!({"answer": "", "submitted": false})),
        (Some("391"), json!({"answer": "391", "submitted": true})),
        (
            Some(r#"{"total": 391}"#),
            json!({"answer": "", "submitted": true}),
        ),
        (
            Some(r#"{"content": "391", "citations": []}"#),
            json!({"answer": "391", "submitted": true}),
        ),
        (
            Some("[391, 2]"),
            json!({"answer": "[391,2]", "submitted": true}),
        ),
    ];
    for (answer, expected_info) in cases {
        get_prompt(&client, "test-env:answer_question", json!({"query": "q"}))
            .await
            .unwrap();
        if let Some(answer) = answer {
            let scenario = "other-env:answer_question"; // the prefix is ignored, like hud
            let (is_error, _) = call(
                &client,
                "_hud_submit",
                json!({"scenario": scenario, "answer": answer}),
            )
            .await;
            assert!(!is_error);
        }
        let text = read(&client, "test-env:answer_question").await.unwrap();
        let evaluation: Evaluation = serde_json::from_str(&text).unwrap();
        assert_eq!(
            Value::Object(evaluation.info),
            expected_info,
            "answer {answer:?}"
        );
    }
}

#[tokio::test]
async fn submit_needs_the_matching_active_scenario() {
    let client = connect(test_env()).await;
    let submit = |scenario: &'static str| json!({"scenario": scenario, "answer": "x"});
    assert_eq!(
        call(&client, "_hud_submit", submit("answer_question")).await,
        (
            true,
            "Error calling tool '_hud_submit': No active scenario session for 'answer_question'"
                .into()
        )
    );
    get_prompt(
        &client,
        "test-env:sum_numbers",
        json!({"numbers": "[1, 2, 3]"}),
    )
    .await
    .unwrap();
    assert_eq!(
        call(&client, "_hud_submit", submit("answer_question")).await,
        (
            true,
            "Error calling tool '_hud_submit': Scenario mismatch: active is 'sum_numbers', but received answer for 'answer_question'"
                .into()
        )
    );
    let (is_error, text) = call(
        &client,
        "_hud_submit",
        json!({"scenario": "sum_numbers", "answer": 6}),
    )
    .await;
    assert!(is_error);
    assert!(text.starts_with("Input validation error: "), "{text}");
}

#[tokio::test]
async fn prompt_arguments_are_decoded_and_enforced() {
    let client = connect(test_env()).await;
    let prompt = get_prompt(
        &client,
        "test-env:sum_numbers",
        json!({"numbers": "[1, 2, 3]", "strict": "true", "note": "42"}),
    )
    .await
    .unwrap();
    assert_eq!(prompt, "Sum [1, 2, 3] (42)");
    call(
        &client,
        "_hud_submit",
        json!({"scenario": "sum_numbers", "answer": "6"}),
    )
    .await;
    let text = read(&client, "test-env:sum_numbers").await.unwrap();
    assert_eq!(
        text,
        r#"{"reward": 1.0, "done": true, "info": {}, "isError": false}"#
    );

    let error = get_prompt(&client, "test-env:sum_numbers", json!({"numbers": "1,2,3"}))
        .await
        .unwrap_err();
    let (code, message) = mcp_error(error);
    assert_eq!(code, -32602);
    assert!(
        message.starts_with("invalid arguments for scenario 'test-env:sum_numbers': "),
        "{message}"
    );
    let error = get_prompt(&client, "test-env:answer_question", json!({}))
        .await
        .unwrap_err();
    let (_, message) = mcp_error(error);
    assert!(
        message.contains("\"query\" is a required property"),
        "{message}"
    );
    let error = get_prompt(
        &client,
        "test-env:answer_question",
        json!({"query": "q", "extra": "1"}),
    )
    .await
    .unwrap_err();
    let (_, message) = mcp_error(error);
    assert!(
        message.contains("Additional properties are not allowed"),
        "{message}"
    );
}

#[tokio::test]
async fn setup_errors_are_json_rpc_errors_like_hud() {
    let client = connect(test_env()).await;
    let error = get_prompt(&client, "answer_question", json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        mcp_error(error),
        (0, "Prompt not found: answer_question".into())
    );
    let error = get_prompt(&client, "other-env:answer_question", json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        mcp_error(error),
        (0, "Prompt not found: other-env:answer_question".into())
    );

    let error = get_prompt(&client, "test-env:missing", json!({}))
        .await
        .unwrap_err();
    let (code, message) = mcp_error(error);
    assert_eq!(code, 0);
    assert!(
        message.starts_with("⚠️ ERROR: Scenario not found."),
        "{message}"
    );
    assert!(
        message.contains("  You requested: missing\n  SDK looked for: test-env:missing\n"),
        "{message}"
    );
    assert!(
        message.contains(
            "Available scenarios:\n    test-env:answer_question\n    test-env:sum_numbers\n"
        ),
        "{message}"
    );

    let error = get_prompt(&client, "test-env:no_prompt", json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        mcp_error(error),
        (
            0,
            "Scenario 'test-env:no_prompt' returned empty prompt".into()
        )
    );
    let error = get_prompt(&client, "test-env:broken", json!({}))
        .await
        .unwrap_err();
    assert_eq!(mcp_error(error), (0, "boom in setup".into()));

    let error = read(&client, "test-env:nothing").await.unwrap_err();
    assert_eq!(
        mcp_error(error),
        (0, "Resource not found: test-env:nothing".into())
    );
    let error = read(&client, "test-env:answer_question").await.unwrap_err();
    assert_eq!(
        mcp_error(error),
        (0, "Resource not found: test-env:answer_question".into())
    );
}

#[tokio::test]
async fn a_new_prompt_replaces_the_active_scenario() {
    let client = connect(test_env()).await;
    get_prompt(&client, "test-env:sum_numbers", json!({"numbers": "[1]"}))
        .await
        .unwrap();
    get_prompt(&client, "test-env:answer_question", json!({"query": "q"}))
        .await
        .unwrap();
    call(
        &client,
        "_hud_submit",
        json!({"scenario": "answer_question", "answer": "391"}),
    )
    .await;
    // The URI only routes; the session's active scenario is what gets evaluated (like hud).
    let text = read(&client, "test-env:sum_numbers").await.unwrap();
    assert!(
        text.starts_with(r#"{"reward": 1.0, "done": true, "content": "expected='391' got='391'""#),
        "{text}"
    );
    // A failed setup leaves the active scenario alone.
    get_prompt(&client, "test-env:answer_question", json!({"query": "q"}))
        .await
        .unwrap();
    get_prompt(&client, "test-env:broken", json!({}))
        .await
        .unwrap_err();
    let text = read(&client, "test-env:answer_question").await.unwrap();
    assert!(text.starts_with(r#"{"reward": 0.0"#), "{text}");
}

#[tokio::test]
async fn an_active_scenario_filters_tools() {
    let client = connect(test_env()).await;
    assert_eq!(tool_names(&client).await, ["add", "fail", "lookup"]);
    get_prompt(&client, "test-env:sum_numbers", json!({"numbers": "[1]"}))
        .await
        .unwrap();
    assert_eq!(tool_names(&client).await, ["add", "fail"]);
    assert_eq!(
        call(&client, "lookup", json!({"query": "x"})).await,
        (
            true,
            "Tool 'lookup' is not available in the current scenario.".into()
        )
    );
    assert_eq!(
        call(&client, "_peek", json!({})).await,
        (false, "peeked".into())
    );
    read(&client, "test-env:sum_numbers").await.unwrap();
    assert_eq!(tool_names(&client).await, ["add", "fail", "lookup"]);
    assert!(!call(&client, "lookup", json!({"query": "x"})).await.0);
}

/// Sets its flag when dropped, to see a scenario task go away.
struct DropFlag(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_replaced_scenario_is_dropped() {
    use rollout_mcp::sdk::{Environment, NoArgs, Scenario, ScenarioContext};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let env = Environment::new("drops").scenario(Scenario::new(
        "hold",
        "Holds a guard while waiting for its answer.",
        move |_: NoArgs, ctx: ScenarioContext| {
            let guard = DropFlag(flag.clone());
            async move {
                let _answer = ctx.prompt("hold on").await;
                drop(guard);
                1.0
            }
        },
    ));
    let client = connect(env).await;
    get_prompt(&client, "drops:hold", json!({})).await.unwrap();
    assert!(!dropped.load(Ordering::SeqCst));
    // The first run gets replaced; its task is aborted, which drops its guard.
    get_prompt(&client, "drops:hold", json!({})).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while !dropped.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
}
