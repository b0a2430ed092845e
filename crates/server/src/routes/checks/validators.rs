//! Compiled argument schemas, kept per environment version and scenario.
//!
//! Compiling a scenario's JSON Schema costs more than checking a run's arguments against it
//! (on `POST /v1/agent/run` it was most of the check, per request), and one version's
//! scenarios serve every run until the next deploy. An entry also keeps the schema it was
//! compiled from and is used only while the scenario still has that schema, so the cache can
//! never check arguments against another schema than the version's.

use jsonschema::Validator;
use rollout_domain::ScenarioSpec;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// The most entries kept; past it the cache starts over (deploys are rare next to runs, so
/// only a server that saw this many versions and scenarios ever compiles one again).
const CAPACITY: usize = 1024;

/// A scenario's schema and its validator (`None`: the schema does not compile).
struct Compiled {
    schema: Value,
    validator: Option<Arc<Validator>>,
}

/// Compiled schemas by (version id, scenario id).
#[derive(Default)]
struct Validators {
    entries: Mutex<HashMap<(String, String), Compiled>>,
}

static VALIDATORS: LazyLock<Validators> = LazyLock::new(Validators::default);

/// The validator of `scenario`'s arguments in the version `version_id`, compiled on first use;
/// `None` when its schema does not compile (logged; the arguments are then not checked).
pub(super) fn compiled(version_id: &str, scenario: &ScenarioSpec) -> Option<Arc<Validator>> {
    VALIDATORS.get(version_id, scenario)
}

impl Validators {
    fn get(&self, version_id: &str, scenario: &ScenarioSpec) -> Option<Arc<Validator>> {
        let key = (version_id.to_string(), scenario.id.clone());
        if let Some(compiled) = self.lock().get(&key)
            && compiled.schema == scenario.args_schema
        {
            return compiled.validator.clone();
        }
        // Compiled outside the lock: two first requests may both compile; either result is
        // the same.
        let validator = match jsonschema::validator_for(&scenario.args_schema) {
            Ok(validator) => Some(Arc::new(validator)),
            Err(error) => {
                tracing::warn!(scenario = %scenario.id, %error, "scenario has an invalid argument schema; arguments not checked");
                None
            }
        };
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            key,
            Compiled {
                schema: scenario.args_schema.clone(),
                validator: validator.clone(),
            },
        );
        validator
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Compiled>> {
        // An entry is inserted whole; a panic elsewhere cannot leave one half-written.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scenario(schema: Value) -> ScenarioSpec {
        ScenarioSpec {
            name: "greet".into(),
            id: "env:greet".into(),
            description: String::new(),
            arguments: Vec::new(),
            args_schema: schema,
            meta: Default::default(),
        }
    }

    fn needs_name() -> Value {
        json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}})
    }

    /// A second request for the same version and scenario gets the validator compiled for the
    /// first, not a new one.
    #[test]
    fn a_versions_scenario_is_compiled_once() {
        let validators = Validators::default();
        let spec = scenario(needs_name());
        let first = validators.get("v1", &spec);
        let second = validators.get("v1", &spec);
        assert!(matches!((&first, &second), (Some(a), Some(b)) if Arc::ptr_eq(a, b)));
        assert!(first.is_some_and(|v| !v.is_valid(&json!({}))));
    }

    /// An entry is used only with the schema it was compiled from: a scenario whose schema
    /// differs under the same key (another version's description) is compiled afresh.
    #[test]
    fn a_changed_schema_is_compiled_again() {
        let validators = Validators::default();
        let strict = validators.get("v1", &scenario(needs_name()));
        let open = validators.get("v1", &scenario(json!({"type": "object"})));
        assert!(strict.is_some_and(|v| !v.is_valid(&json!({}))));
        assert!(open.is_some_and(|v| v.is_valid(&json!({}))));
        let other_version = validators.get("v2", &scenario(json!({"type": "object"})));
        assert!(other_version.is_some_and(|v| v.is_valid(&json!({}))));
    }

    /// A schema that does not compile checks nothing (as before the cache), and the cache
    /// stays bounded.
    #[test]
    fn an_invalid_schema_checks_nothing_and_the_cache_is_bounded() {
        let validators = Validators::default();
        assert!(
            validators
                .get("v1", &scenario(json!({"type": 12})))
                .is_none()
        );
        for version in 0..CAPACITY + 10 {
            validators.get(&version.to_string(), &scenario(needs_name()));
        }
        assert!(validators.lock().len() <= CAPACITY);
    }
}
