//! Model name resolution, key checks, listing, and clients built by the catalog.

use super::{complete, fast_retry, first_request};
use rollout_domain::{StopReason, ValidationItem};
use rollout_models::{
    ApiKey, CatalogConfig, ModelCatalog, ModelEntry, ProviderConfig, ResolveError, ResolvedModel,
    WireFormat,
};
use rollout_testkit::{FakeModelServer, FakeReply};
use serde_json::json;
use std::time::Duration;

fn provider(name: &str, wire: WireFormat, base_url: &str, key_env: Option<&str>) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        wire,
        base_url: base_url.into(),
        api_key_env: key_env.map(str::to_string),
        api_key: None,
    }
}

fn entry(name: &str, provider: &str, upstream: Option<&str>) -> ModelEntry {
    ModelEntry {
        name: name.into(),
        provider: provider.into(),
        upstream: upstream.map(str::to_string),
        max_tokens: None,
        description: Some(format!("{name} on {provider}")),
    }
}

/// Built-in providers with keys, plus a keyless local vLLM with two entries.
fn catalog(with_keys: bool) -> ModelCatalog {
    let mut providers = CatalogConfig::builtin_providers();
    if with_keys {
        for provider in &mut providers {
            provider.api_key = Some(ApiKey::new(format!("key-{}", provider.name)));
        }
    }
    providers.push(provider(
        "vllm",
        WireFormat::OpenAiChat,
        "http://127.0.0.1:9/v1",
        None,
    ));
    ModelCatalog::new(CatalogConfig {
        providers,
        models: vec![
            entry(
                "local-llama",
                "vllm",
                Some("meta-llama/Llama-3.1-8B-Instruct"),
            ),
            entry("gpt-oss", "vllm", None),
            entry("orphan", "nowhere", None),
        ],
        ..CatalogConfig::default()
    })
}

fn provider_and_upstream(resolved: &ResolvedModel) -> (&str, &str) {
    (resolved.provider(), resolved.upstream())
}

#[test]
fn resolves_every_form() {
    let catalog = catalog(true);
    let cases = [
        ("replay", ("replay", "replay")),
        ("local-llama", ("vllm", "meta-llama/Llama-3.1-8B-Instruct")),
        // An exact entry wins over the `gpt-` prefix.
        ("gpt-oss", ("vllm", "gpt-oss")),
        ("claude-opus-4-5", ("anthropic", "claude-opus-4-5")),
        ("gpt-5-mini", ("openai", "gpt-5-mini")),
        ("o1", ("openai", "o1")),
        ("o3-mini", ("openai", "o3-mini")),
        ("o4-mini", ("openai", "o4-mini")),
        ("vllm/Qwen/Qwen3-8B", ("vllm", "Qwen/Qwen3-8B")),
        ("anthropic/claude-future", ("anthropic", "claude-future")),
    ];
    for (name, expected) in cases {
        let resolved = catalog
            .resolve("p", name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(provider_and_upstream(&resolved), expected, "{name}");
    }
    assert!(matches!(
        catalog.resolve("p", "claude-opus-4-5").unwrap(),
        ResolvedModel::Provider {
            wire: WireFormat::Anthropic,
            max_tokens: None,
            ..
        }
    ));
}

#[test]
fn unknown_names_get_a_hint_listing_the_accepted_forms() {
    let catalog = catalog(true);
    for name in ["llama3", "nope/model", "vllm/", "o2"] {
        let error = catalog.resolve("p", name).unwrap_err();
        assert!(matches!(&error, ResolveError::Unknown { model, .. } if model == name));
        let message = error.to_string();
        for form in [
            "'replay'",
            "local-llama",
            "'claude-'",
            "'gpt-'",
            "'<provider>/<model>'",
            "vllm",
        ] {
            assert!(message.contains(form), "{form} missing from: {message}");
        }
        assert_eq!(error.code(), "unknown_model");
    }
    let orphan = catalog.resolve("p", "orphan").unwrap_err().to_string();
    assert!(
        orphan.contains("provider 'nowhere', which is not configured"),
        "{orphan}"
    );
}

#[test]
fn a_missing_key_names_the_variable_to_set() {
    let catalog = catalog(false);
    let error = catalog.resolve("p", "claude-opus-4-5").unwrap_err();
    assert_eq!(
        error,
        ResolveError::MissingKey {
            model: "claude-opus-4-5".into(),
            provider: "anthropic".into(),
            env_var: "ANTHROPIC_API_KEY".into(),
        }
    );
    assert_eq!(
        error.to_string(),
        "model 'claude-opus-4-5' needs ANTHROPIC_API_KEY; set it in the server's environment"
    );
    assert_eq!(error.code(), "missing_api_key");
    assert!(
        matches!(catalog.resolve("p", "openai/gpt-x"), Err(ResolveError::MissingKey { env_var, .. }) if env_var == "OPENAI_API_KEY")
    );
    assert!(catalog.client("p", "gpt-5", &[]).is_err());
    // Providers without a key variable need no key.
    assert!(catalog.resolve("p", "local-llama").is_ok());
    assert!(catalog.client("p", "local-llama", &[]).is_ok());
}

#[test]
fn replay_needs_validation_items() {
    let catalog = catalog(false);
    let error = catalog.client("p", "replay", &[]).err().unwrap();
    assert_eq!(error, ResolveError::ReplayNeedsValidation);
    assert!(error.to_string().contains("validation"));
    let items = [ValidationItem::Answer { answer: "4".into() }];
    assert!(catalog.client("p", "replay", &items).is_ok());
}

#[test]
fn list_shows_replay_entries_and_well_known_names_with_availability() {
    let infos = catalog(false).list("p");
    let names: Vec<&str> = infos.iter().map(|info| info.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "replay",
            "local-llama",
            "gpt-oss",
            "orphan",
            "claude-opus-4-5",
            "claude-sonnet-4-5",
            "claude-haiku-4-5",
            "gpt-5",
            "gpt-5-mini",
            "gpt-4.1",
            "o3",
            "o4-mini",
        ]
    );
    let find = |name: &str| infos.iter().find(|info| info.name == name).unwrap();
    assert!(find("replay").available);
    let llama = find("local-llama");
    assert!(llama.available && llama.reason.is_none());
    assert_eq!(llama.upstream, "meta-llama/Llama-3.1-8B-Instruct");
    assert_eq!(llama.description.as_deref(), Some("local-llama on vllm"));
    let claude = find("claude-sonnet-4-5");
    assert!(!claude.available);
    assert_eq!(claude.provider, "anthropic");
    assert!(
        claude
            .reason
            .as_deref()
            .unwrap()
            .contains("ANTHROPIC_API_KEY")
    );
    assert!(!find("orphan").available);

    let json = serde_json::to_value(find("gpt-5")).unwrap();
    assert_eq!(json["provider"], "openai");
    assert_eq!(json["available"], false);

    assert!(
        catalog(true)
            .list("p")
            .iter()
            .filter(|info| info.name != "orphan")
            .all(|info| info.available)
    );
}

#[tokio::test]
async fn catalog_clients_talk_to_their_providers() {
    let server = FakeModelServer::start().await.unwrap();
    server.push([
        FakeReply::text("from anthropic"),
        FakeReply::text("from openai"),
    ]);
    let catalog = ModelCatalog::new(CatalogConfig {
        providers: vec![
            provider(
                "fake-anthropic",
                WireFormat::Anthropic,
                &server.base_url(),
                None,
            ),
            ProviderConfig {
                api_key: Some(ApiKey::new("sk-local")),
                ..provider(
                    "fake-openai",
                    WireFormat::OpenAiChat,
                    &format!("{}/v1", server.base_url()),
                    Some("FAKE_KEY"),
                )
            },
        ],
        models: vec![ModelEntry {
            max_tokens: Some(77),
            ..entry("small", "fake-anthropic", Some("claude-small"))
        }],
        retry: fast_retry(1),
        request_timeout: Duration::from_secs(30),
        prices: Default::default(),
    });

    let anthropic = catalog.client("p", "small", &[]).unwrap();
    let response = complete(anthropic.as_ref(), &first_request())
        .await
        .unwrap();
    assert_eq!(response.message.content, "from anthropic");
    assert_eq!(response.stop_reason, StopReason::EndTurn);

    let openai = catalog.client("p", "fake-openai/qwen3", &[]).unwrap();
    let response = complete(openai.as_ref(), &first_request()).await.unwrap();
    assert_eq!(response.message.content, "from openai");

    let requests = server.requests();
    assert_eq!(requests[0].body["model"], "claude-small");
    assert_eq!(requests[0].body["max_tokens"], 77);
    assert_eq!(requests[0].header("x-api-key"), None);
    assert_eq!(requests[1].body["model"], "qwen3");
    assert_eq!(requests[1].header("authorization"), Some("Bearer sk-local"));
    assert_eq!(
        requests[1].body["tools"][0]["function"]["name"],
        json!("add")
    );
}

#[tokio::test]
async fn a_policy_driven_fake_answers_a_multi_step_loop_on_both_wires() {
    use rollout_domain::{Message, ModelClient};
    use rollout_testkit::Policy;

    let policy = Policy::ToolStepsThenAnswer {
        tool: "add".into(),
        arguments: json!({"a": 2, "b": 2}),
        steps: 2,
    };
    let server = FakeModelServer::start_with_policy(policy).await.unwrap();
    let clients: [Box<dyn ModelClient>; 2] = [
        Box::new(super::anthropic(&server, Some("k"), fast_retry(1))),
        Box::new(super::openai(&server, Some("k"), fast_retry(1))),
    ];
    for client in &clients {
        let mut request = first_request();
        let mut steps = 0;
        let answer = loop {
            let response = complete(client.as_ref(), &request).await.unwrap();
            if response.message.tool_calls.is_empty() {
                break response.message.content;
            }
            steps += 1;
            let calls = response.message.tool_calls.clone();
            request.messages.push(response.message);
            for call in calls {
                let result = super::tool_result(&call.id, &format!("{steps}"));
                request.messages.push(Message::tool(&result));
            }
        };
        assert_eq!(steps, 2);
        assert_eq!(answer, "The answer is 2.");
    }
    assert_eq!(server.requests().len(), 6);
}
