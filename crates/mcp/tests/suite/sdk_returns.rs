//! Structured answers (hud's `returns=`): the schema is published, the answer is parsed.

use super::sdk::{call, connect, get_prompt, read};
use rollout_mcp::sdk::{Environment, Evaluation, NoArgs, Scenario, ScenarioContext};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, JsonSchema)]
struct SumAnswer {
    total: i64,
}

fn env() -> Environment {
    Environment::new("returns-env").scenario(
        Scenario::new(
            "sum",
            "Add 1, 2 and 3.",
            |_: NoArgs, ctx: ScenarioContext| async move {
                let answer = ctx.prompt("Add 1, 2 and 3; answer {\"total\": N}.").await;
                let reward = match answer.parse::<SumAnswer>() {
                    Ok(SumAnswer { total: 6 }) => 1.0,
                    _ => 0.0,
                };
                Evaluation::reward(reward)
            },
        )
        .returns::<SumAnswer>(),
    )
}

async fn reward_for(answer: &str) -> f64 {
    let client = connect(env()).await;
    get_prompt(&client, "returns-env:sum", json!({}))
        .await
        .unwrap();
    let submitted = call(
        &client,
        "_hud_submit",
        json!({"scenario": "sum", "answer": answer}),
    )
    .await;
    assert!(!submitted.0, "{submitted:?}");
    let text = read(&client, "returns-env:sum").await.unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["reward"]
        .as_f64()
        .unwrap()
}

#[tokio::test]
async fn the_answer_schema_is_published_in_the_listing_and_the_setup() {
    let client = connect(env()).await;
    let prompts = client.list_all_prompts().await.unwrap();
    let meta = serde_json::to_value(&prompts[0].meta).unwrap();
    assert_eq!(
        meta["returns_schema"]["properties"]["total"]["type"], "integer",
        "{meta}"
    );
    assert_eq!(meta["returns_schema"]["required"], json!(["total"]));
    let params = rmcp::model::GetPromptRequestParams::new("returns-env:sum");
    let setup = serde_json::to_value(client.get_prompt(params).await.unwrap()).unwrap();
    assert_eq!(
        setup["_meta"]["returns_schema"]["title"], "SumAnswer",
        "{setup}"
    );
}

#[tokio::test]
async fn structured_answers_are_parsed_like_hud() {
    assert_eq!(
        reward_for(r#"{"total": 6}"#).await,
        0.0,
        "a bare JSON object has no content (hud)"
    );
    assert_eq!(reward_for(r#"{"content": "{\"total\": 6}"}"#).await, 1.0);
    assert_eq!(reward_for(r#"{"content": "{\"total\": 7}"}"#).await, 0.0);
    assert_eq!(reward_for("not json").await, 0.0);
}
