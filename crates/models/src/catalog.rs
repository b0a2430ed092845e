//! The model catalog: turns the `model` name of a request into a provider client.
//!
//! Resolution order: `replay`; an exact configured entry; the well-known prefixes
//! (`claude-` → `anthropic`; `gpt-`, `o1`, `o3`, `o4` → `openai`); `provider/model` with a
//! configured provider; otherwise an error that lists the accepted forms.
//!
//! Checkpoints registered at run time (`register_checkpoint`) come first after `replay`:
//! a `fewshot` checkpoint is its base model's client wrapped in a [`FewshotClient`], an
//! endpoint checkpoint an OpenAI-compatible client of its base URL. Checkpoints belong to
//! a project and their names are the project's: every lookup names the project it is made
//! for, and another project's checkpoint is, for it, a model that does not exist.

use crate::anthropic::AnthropicClient;
use crate::config::{CatalogConfig, ClientConfig, ProviderConfig, WireFormat};
use crate::error::ResolveError;
use crate::fewshot::FewshotClient;
use crate::openai::OpenAiChatClient;
use crate::price::Price;
use crate::replay::{REPLAY_MODEL, ReplayModel};
use rollout_domain::{Checkpoint, CheckpointTarget, ModelClient, ValidationItem};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// How deep checkpoints may be stacked on checkpoints.
const MAX_CHECKPOINT_DEPTH: usize = 4;

/// Names listed for each built-in provider, so that `GET /v1/models` shows what is callable
/// even before anything is configured.
const WELL_KNOWN: [(&str, &[&str]); 2] = [
    (
        "anthropic",
        &["claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"],
    ),
    (
        "openai",
        &["gpt-5", "gpt-5-mini", "gpt-4.1", "o3", "o4-mini"],
    ),
];

/// What a model name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedModel {
    /// The built-in replay model.
    Replay,
    /// A model served by a provider.
    Provider {
        /// The name as requested.
        name: String,
        provider: String,
        wire: WireFormat,
        /// The provider's model id.
        upstream: String,
        max_tokens: Option<u32>,
    },
}

impl ResolvedModel {
    /// The provider's name (`replay` for the replay model).
    pub fn provider(&self) -> &str {
        match self {
            ResolvedModel::Replay => REPLAY_MODEL,
            ResolvedModel::Provider { provider, .. } => provider,
        }
    }

    /// The provider's model id (`replay` for the replay model).
    pub fn upstream(&self) -> &str {
        match self {
            ResolvedModel::Replay => REPLAY_MODEL,
            ResolvedModel::Provider { upstream, .. } => upstream,
        }
    }
}

/// One line of `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub provider: String,
    pub upstream: String,
    /// False when a call would fail at once (for example, the key is missing).
    pub available: bool,
    /// Why the model is not available.
    pub reason: Option<String>,
    pub description: Option<String>,
    /// Set when the model is a checkpoint: where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointLineage>,
    /// USD per million input and output tokens, when known.
    #[serde(default)]
    pub price: Option<Price>,
}

/// The lineage of a checkpoint, as `GET /v1/models` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointLineage {
    pub base_model: String,
    pub backend: String,
    pub dataset_id: String,
    pub training_job_id: String,
    pub project_id: String,
    pub created_at_ms: i64,
}

/// The callable models. Cheap to share behind an `Arc`; building clients does no I/O.
#[derive(Debug, Clone)]
pub struct ModelCatalog {
    config: CatalogConfig,
    /// Checkpoints by project and name, registered at start-up from the store and when
    /// training succeeds.
    checkpoints: Arc<RwLock<BTreeMap<(String, String), Checkpoint>>>,
}

/// A name routed to a provider, before the key check.
struct Route<'a> {
    provider: &'a ProviderConfig,
    upstream: String,
    max_tokens: Option<u32>,
}

impl ModelCatalog {
    /// A catalog over `config`. Entries naming a missing provider surface when resolved.
    pub fn new(config: CatalogConfig) -> Self {
        Self {
            config,
            checkpoints: Arc::default(),
        }
    }

    /// Makes a checkpoint callable by its name in its project (replacing one of the same
    /// name there).
    pub fn register_checkpoint(&self, checkpoint: Checkpoint) {
        let mut checkpoints = self
            .checkpoints
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (checkpoint.project_id.clone(), checkpoint.name.clone());
        checkpoints.insert(key, checkpoint);
    }

    /// Forgets a checkpoint (one registered ahead of a commit that did not happen).
    pub fn remove_checkpoint(&self, project: &str, name: &str) {
        self.checkpoints
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(project.to_string(), name.to_string()));
    }

    /// The checkpoint `project` has under `name`.
    pub fn checkpoint(&self, project: &str, name: &str) -> Option<Checkpoint> {
        self.checkpoints
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(project.to_string(), name.to_string()))
            .cloned()
    }

    /// The price of `model` in `project`: configured, built in, or its base model's for a
    /// checkpoint; `replay` is free. `None` when unknown (the cost is then not reported).
    pub fn price(&self, project: &str, model: &str) -> Option<Price> {
        self.price_at_depth(project, model, 0)
    }

    fn price_at_depth(&self, project: &str, model: &str, depth: usize) -> Option<Price> {
        if model == REPLAY_MODEL {
            return Some(Price::FREE);
        }
        if let Some(price) = self.config.prices.get(model) {
            return Some(*price);
        }
        if let Some(checkpoint) = self.checkpoint(project, model)
            && depth < MAX_CHECKPOINT_DEPTH
        {
            return self.price_at_depth(project, &checkpoint.base_model, depth + 1);
        }
        let upstream = self.config.models.iter().find(|entry| entry.name == model);
        let upstream = upstream
            .and_then(|entry| entry.upstream.as_deref())
            .unwrap_or(model);
        crate::price::builtin(upstream)
    }

    /// True when `name` is served by configuration, a provider prefix or `replay` (i.e.
    /// a checkpoint of that name would be shadowed or ambiguous).
    pub fn is_builtin_name(&self, name: &str) -> bool {
        name == REPLAY_MODEL || self.route(name).is_ok()
    }

    /// Resolves a model name for a run of `project` and checks that its provider has the
    /// key it needs.
    pub fn resolve(&self, project: &str, model: &str) -> Result<ResolvedModel, ResolveError> {
        if model == REPLAY_MODEL {
            return Ok(ResolvedModel::Replay);
        }
        if let Some(checkpoint) = self.checkpoint(project, model) {
            return match &checkpoint.target {
                CheckpointTarget::Fewshot { .. } => {
                    let base = self.resolve(project, &checkpoint.base_model)?;
                    Ok(match base {
                        ResolvedModel::Provider {
                            provider,
                            wire,
                            upstream,
                            max_tokens,
                            ..
                        } => ResolvedModel::Provider {
                            name: model.to_string(),
                            provider,
                            wire,
                            upstream,
                            max_tokens,
                        },
                        ResolvedModel::Replay => ResolvedModel::Replay,
                    })
                }
                CheckpointTarget::Endpoint {
                    model: upstream, ..
                } => Ok(ResolvedModel::Provider {
                    name: model.to_string(),
                    provider: "checkpoint".into(),
                    wire: WireFormat::OpenAiChat,
                    upstream: upstream.clone(),
                    max_tokens: None,
                }),
            };
        }
        let route = self.route(model)?;
        check_key(model, route.provider)?;
        Ok(ResolvedModel::Provider {
            name: model.to_string(),
            provider: route.provider.name.clone(),
            wire: route.provider.wire,
            upstream: route.upstream,
            max_tokens: route.max_tokens,
        })
    }

    /// A client for one run of `project`. `validation` feeds the replay model and is
    /// ignored otherwise.
    pub fn client(
        &self,
        project: &str,
        model: &str,
        validation: &[ValidationItem],
    ) -> Result<Arc<dyn ModelClient>, ResolveError> {
        self.client_for_run(project, model, validation, &Map::new())
    }

    /// A client for one run of `project` with these scenario arguments (a `fewshot`
    /// checkpoint chooses its demonstrations by them).
    pub fn client_for_run(
        &self,
        project: &str,
        model: &str,
        validation: &[ValidationItem],
        scenario_args: &Map<String, Value>,
    ) -> Result<Arc<dyn ModelClient>, ResolveError> {
        self.client_at_depth(project, model, validation, scenario_args, 0)
    }

    fn client_at_depth(
        &self,
        project: &str,
        model: &str,
        validation: &[ValidationItem],
        scenario_args: &Map<String, Value>,
        depth: usize,
    ) -> Result<Arc<dyn ModelClient>, ResolveError> {
        if model != REPLAY_MODEL
            && let Some(checkpoint) = self.checkpoint(project, model)
        {
            if depth >= MAX_CHECKPOINT_DEPTH {
                return Err(ResolveError::Unknown {
                    model: model.to_string(),
                    hint: "checkpoints are stacked too deep".into(),
                });
            }
            return match &checkpoint.target {
                CheckpointTarget::Fewshot { k, demonstrations } => {
                    let base = self.client_at_depth(
                        project,
                        &checkpoint.base_model,
                        validation,
                        scenario_args,
                        depth + 1,
                    )?;
                    Ok(Arc::new(FewshotClient::new(
                        base,
                        demonstrations,
                        *k,
                        scenario_args,
                    )))
                }
                CheckpointTarget::Endpoint {
                    base_url,
                    model: upstream,
                    key_provider,
                } => {
                    let api_key = key_provider
                        .as_deref()
                        .and_then(|name| self.provider(name))
                        .and_then(|provider| provider.api_key.clone());
                    Ok(Arc::new(OpenAiChatClient::new(ClientConfig {
                        provider: "checkpoint".into(),
                        base_url: base_url.clone(),
                        api_key,
                        model: upstream.clone(),
                        max_tokens: None,
                        retry: self.config.retry,
                        request_timeout: self.config.request_timeout,
                    })))
                }
            };
        }
        if model == REPLAY_MODEL {
            if validation.is_empty() {
                return Err(ResolveError::ReplayNeedsValidation);
            }
            return Ok(Arc::new(ReplayModel::new(validation.to_vec())));
        }
        let route = self.route(model)?;
        check_key(model, route.provider)?;
        let config = ClientConfig {
            provider: route.provider.name.clone(),
            base_url: route.provider.base_url.clone(),
            api_key: route.provider.api_key.clone(),
            model: route.upstream,
            max_tokens: route.max_tokens,
            retry: self.config.retry,
            request_timeout: self.config.request_timeout,
        };
        Ok(match route.provider.wire {
            WireFormat::Anthropic => Arc::new(AnthropicClient::new(config)),
            WireFormat::OpenAiChat => Arc::new(OpenAiChatClient::new(config)),
        })
    }

    /// `replay`, every configured entry, the well-known names of the built-in providers
    /// that are configured, and the checkpoints of `project`, each with whether it can be
    /// called now.
    pub fn list(&self, project: &str) -> Vec<ModelInfo> {
        let mut infos = vec![ModelInfo {
            name: REPLAY_MODEL.into(),
            provider: REPLAY_MODEL.into(),
            upstream: REPLAY_MODEL.into(),
            available: true,
            reason: None,
            description: Some(
                "plays the task's validation actions back without an LLM (needs `validation`)"
                    .into(),
            ),
            checkpoint: None,
            price: Some(Price::FREE),
        }];
        for entry in &self.config.models {
            let mut info = self.info(project, &entry.name, &entry.provider);
            info.description = entry.description.clone();
            infos.push(info);
        }
        for (provider, names) in WELL_KNOWN {
            if self.provider(provider).is_none() {
                continue;
            }
            for name in names {
                if !infos.iter().any(|info| info.name == *name) {
                    infos.push(self.info(project, name, provider));
                }
            }
        }
        let checkpoints: Vec<Checkpoint> = self
            .checkpoints
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|checkpoint| checkpoint.project_id == project)
            .cloned()
            .collect();
        for checkpoint in checkpoints {
            let (provider, upstream, problem) = match self.resolve(project, &checkpoint.name) {
                Ok(resolved) => (
                    resolved.provider().to_string(),
                    resolved.upstream().to_string(),
                    None,
                ),
                Err(error) => (
                    "checkpoint".to_string(),
                    checkpoint.base_model.clone(),
                    Some(error.to_string()),
                ),
            };
            let price = self.price(project, &checkpoint.name);
            infos.push(ModelInfo {
                price,
                name: checkpoint.name.clone(),
                provider,
                upstream,
                available: problem.is_none(),
                reason: problem,
                description: Some(format!(
                    "checkpoint of {} ({} backend)",
                    checkpoint.base_model, checkpoint.backend
                )),
                checkpoint: Some(CheckpointLineage {
                    base_model: checkpoint.base_model,
                    backend: checkpoint.backend,
                    dataset_id: checkpoint.dataset_id,
                    training_job_id: checkpoint.training_job_id,
                    project_id: checkpoint.project_id,
                    created_at_ms: checkpoint.created_at_ms,
                }),
            });
        }
        infos
    }

    fn info(&self, project: &str, name: &str, fallback_provider: &str) -> ModelInfo {
        let (provider, upstream, problem) = match self.route(name) {
            Ok(route) => {
                let problem = check_key(name, route.provider).err();
                (route.provider.name.clone(), route.upstream, problem)
            }
            Err(error) => (fallback_provider.to_string(), name.to_string(), Some(error)),
        };
        ModelInfo {
            name: name.to_string(),
            provider,
            upstream,
            available: problem.is_none(),
            reason: problem.map(|error| error.to_string()),
            description: None,
            checkpoint: None,
            price: self.price(project, name),
        }
    }

    fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.config
            .providers
            .iter()
            .find(|provider| provider.name == name)
    }

    fn route(&self, model: &str) -> Result<Route<'_>, ResolveError> {
        if let Some(entry) = self.config.models.iter().find(|entry| entry.name == model) {
            let provider = self
                .provider(&entry.provider)
                .ok_or_else(|| ResolveError::Unknown {
                    model: model.to_string(),
                    hint: format!(
                        "it is configured with provider '{}', which is not configured",
                        entry.provider
                    ),
                })?;
            return Ok(Route {
                provider,
                upstream: entry.upstream.clone().unwrap_or_else(|| model.to_string()),
                max_tokens: entry.max_tokens,
            });
        }
        if let Some(provider) = builtin_provider_for(model).and_then(|name| self.provider(name)) {
            return Ok(Route {
                provider,
                upstream: model.to_string(),
                max_tokens: None,
            });
        }
        if let Some((prefix, upstream)) = model.split_once('/')
            && !upstream.is_empty()
            && let Some(provider) = self.provider(prefix)
        {
            return Ok(Route {
                provider,
                upstream: upstream.to_string(),
                max_tokens: None,
            });
        }
        Err(ResolveError::Unknown {
            model: model.to_string(),
            hint: self.hint(),
        })
    }

    /// The accepted forms, naming only what this catalog can actually serve.
    fn hint(&self) -> String {
        let mut forms = vec!["'replay'".to_string()];
        if !self.config.models.is_empty() {
            let names: Vec<&str> = self
                .config
                .models
                .iter()
                .take(10)
                .map(|entry| entry.name.as_str())
                .collect();
            let more = if self.config.models.len() > 10 {
                ", ..."
            } else {
                ""
            };
            forms.push(format!("a configured model ({}{more})", names.join(", ")));
        }
        if self.provider("anthropic").is_some() {
            forms.push("a name starting with 'claude-' (anthropic)".into());
        }
        if self.provider("openai").is_some() {
            forms.push("a name starting with 'gpt-', 'o1', 'o3' or 'o4' (openai)".into());
        }
        let providers: Vec<&str> = self
            .config
            .providers
            .iter()
            .map(|provider| provider.name.as_str())
            .collect();
        if !providers.is_empty() {
            forms.push(format!(
                "'<provider>/<model>' with provider one of {}",
                providers.join(", ")
            ));
        }
        format!("use {}; GET /v1/models lists them", forms.join(", or "))
    }
}

/// The built-in provider a well-known name belongs to.
fn builtin_provider_for(model: &str) -> Option<&'static str> {
    if model.starts_with("claude-") {
        return Some("anthropic");
    }
    let o_series = ["o1", "o3", "o4"].iter().any(|prefix| {
        model
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
    });
    (model.starts_with("gpt-") || o_series).then_some("openai")
}

fn check_key(model: &str, provider: &ProviderConfig) -> Result<(), ResolveError> {
    let Some(env_var) = &provider.api_key_env else {
        return Ok(());
    };
    match &provider.api_key {
        Some(key) if !key.expose().is_empty() => Ok(()),
        _ => Err(ResolveError::MissingKey {
            model: model.to_string(),
            provider: provider.name.clone(),
            env_var: env_var.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_well_known_prefixes() {
        for name in ["claude-opus-4-5", "claude-3-haiku"] {
            assert_eq!(builtin_provider_for(name), Some("anthropic"), "{name}");
        }
        for name in ["gpt-5", "gpt-4.1", "o1", "o3-mini", "o4-mini", "o3"] {
            assert_eq!(builtin_provider_for(name), Some("openai"), "{name}");
        }
        for name in ["llama3", "ollama", "o2", "gpt5", "claude", "o10"] {
            assert_eq!(builtin_provider_for(name), None, "{name}");
        }
    }
}
