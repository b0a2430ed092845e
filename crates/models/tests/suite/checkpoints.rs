//! Checkpoints registered at run time: resolved, listed with lineage, and called (a
//! `fewshot` checkpoint puts its demonstrations in the system prompt; an endpoint
//! checkpoint calls its own base URL).

use super::{complete, first_request};
use rollout_domain::{Checkpoint, CheckpointTarget, Demonstration, Message};
use rollout_models::{ApiKey, CatalogConfig, ModelCatalog};
use rollout_testkit::{FakeModelServer, FakeReply};
use serde_json::{Map, Value, json};

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn demo(id: &str, query: &str, answer: &str) -> Demonstration {
    Demonstration {
        trace_id: id.into(),
        scenario: "answer_question".into(),
        args: object(json!({ "query": query })),
        reward: 1.0,
        messages: vec![Message::user(query), Message::assistant(answer, vec![])],
    }
}

fn catalog(fake: &FakeModelServer) -> ModelCatalog {
    let mut providers = CatalogConfig::builtin_providers();
    for provider in &mut providers {
        provider.api_key = Some(ApiKey::new("key"));
        provider.base_url = if provider.name == "openai" {
            format!("{}/v1", fake.base_url())
        } else {
            fake.base_url()
        };
    }
    ModelCatalog::new(CatalogConfig {
        providers,
        ..CatalogConfig::default()
    })
}

fn checkpoint(name: &str, target: CheckpointTarget) -> Checkpoint {
    Checkpoint {
        name: name.into(),
        project_id: "p".into(),
        base_model: "gpt-5".into(),
        backend: "fewshot".into(),
        dataset_id: "d".into(),
        training_job_id: "j".into(),
        created_at_ms: 1,
        target,
    }
}

#[tokio::test]
async fn a_fewshot_checkpoint_adds_the_closest_demonstrations_to_the_system_prompt() {
    let fake = FakeModelServer::start().await.unwrap();
    fake.push([FakeReply::text("done")]);
    let catalog = catalog(&fake);
    assert!(catalog.client("p", "arith-fewshot", &[]).is_err());
    assert!(catalog.is_builtin_name("gpt-5-fewshot"));
    assert!(!catalog.is_builtin_name("arith-fewshot"));
    catalog.register_checkpoint(checkpoint(
        "arith-fewshot",
        CheckpointTarget::Fewshot {
            k: 1,
            demonstrations: vec![
                demo("a", "capital of France", "Paris"),
                demo("b", "17 * 23", "391"),
            ],
        },
    ));
    assert_eq!(
        catalog.resolve("p", "arith-fewshot").unwrap().upstream(),
        "gpt-5"
    );
    let args = object(json!({"query": "what is 17 * 24"}));
    let client = catalog
        .client_for_run("p", "arith-fewshot", &[], &args)
        .unwrap();
    complete(client.as_ref(), &first_request()).await.unwrap();
    let request = &fake.requests()[0];
    let system = request.messages()[0]["content"].as_str().unwrap();
    assert!(system.starts_with("You add numbers.\n\n"), "{system}");
    assert!(system.contains("User: 17 * 23\nAssistant: 391"), "{system}");
    assert!(!system.contains("France"), "{system}");
    assert_eq!(request.body["model"], "gpt-5");

    let listed = catalog.list("p");
    let info = listed.iter().find(|m| m.name == "arith-fewshot").unwrap();
    assert!(info.available);
    let lineage = info.checkpoint.as_ref().unwrap();
    assert_eq!(lineage.base_model, "gpt-5");
    assert_eq!(lineage.dataset_id, "d");
    assert_eq!(lineage.training_job_id, "j");
}

#[test]
fn checkpoint_names_are_per_project() {
    let catalog = ModelCatalog::new(CatalogConfig::default());
    let endpoint = |url: &str| CheckpointTarget::Endpoint {
        base_url: url.into(),
        model: "m".into(),
        key_provider: None,
    };
    let mut theirs = checkpoint("support", endpoint("http://127.0.0.1:1/a"));
    theirs.project_id = "a".into();
    catalog.register_checkpoint(theirs);
    // Another project neither sees nor resolves it, and may use the name itself.
    assert!(catalog.resolve("b", "support").is_err());
    assert!(catalog.client("b", "support", &[]).is_err());
    assert!(catalog.list("b").iter().all(|m| m.name != "support"));
    let mut ours = checkpoint("support", endpoint("http://127.0.0.1:1/b"));
    ours.project_id = "b".into();
    catalog.register_checkpoint(ours);
    assert_eq!(
        catalog.checkpoint("a", "support").unwrap().target,
        endpoint("http://127.0.0.1:1/a")
    );
    assert_eq!(
        catalog.checkpoint("b", "support").unwrap().target,
        endpoint("http://127.0.0.1:1/b")
    );
    catalog.remove_checkpoint("a", "support");
    assert!(catalog.resolve("a", "support").is_err());
    assert!(catalog.resolve("b", "support").is_ok());
}

#[tokio::test]
async fn an_endpoint_checkpoint_calls_its_base_url_and_model() {
    let fake = FakeModelServer::start().await.unwrap();
    fake.push([FakeReply::text("hi")]);
    let catalog = ModelCatalog::new(CatalogConfig::default());
    let mut ck = checkpoint(
        "tuned",
        CheckpointTarget::Endpoint {
            base_url: format!("{}/v1", fake.base_url()),
            model: "ft:gpt-5:tuned".into(),
            key_provider: None,
        },
    );
    ck.backend = "command".into();
    catalog.register_checkpoint(ck);
    let client = catalog.client("p", "tuned", &[]).unwrap();
    let response = complete(client.as_ref(), &first_request()).await.unwrap();
    assert_eq!(response.message.content, "hi");
    assert_eq!(fake.requests()[0].body["model"], "ft:gpt-5:tuned");
    assert_eq!(fake.requests()[0].wire, "openai");
}
