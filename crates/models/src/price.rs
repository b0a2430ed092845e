//! What model calls cost: a price per million input and output tokens per model.
//!
//! The built-in table holds the providers' list prices of the well-known models as known
//! when this version was written (USD; prompt-cache discounts are not modelled). Prices
//! change: `[prices.MODEL]` in `rollout.toml` overrides or adds entries.

use rollout_domain::Usage;
use serde::{Deserialize, Serialize};

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// USD per million input tokens.
    pub input: f64,
    /// USD per million output tokens.
    pub output: f64,
}

impl Price {
    /// Free (the replay model).
    pub const FREE: Price = Price {
        input: 0.0,
        output: 0.0,
    };

    /// The cost of `usage` at this price, in USD.
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.input + usage.output_tokens as f64 * self.output)
            / 1_000_000.0
    }
}

/// List prices of the well-known models (USD per million input / output tokens).
const BUILTIN: [(&str, Price); 8] = [
    (
        "claude-opus-4-5",
        Price {
            input: 5.0,
            output: 25.0,
        },
    ),
    (
        "claude-sonnet-4-5",
        Price {
            input: 3.0,
            output: 15.0,
        },
    ),
    (
        "claude-haiku-4-5",
        Price {
            input: 1.0,
            output: 5.0,
        },
    ),
    (
        "gpt-5-mini",
        Price {
            input: 0.25,
            output: 2.0,
        },
    ),
    (
        "gpt-5",
        Price {
            input: 1.25,
            output: 10.0,
        },
    ),
    (
        "gpt-4.1",
        Price {
            input: 2.0,
            output: 8.0,
        },
    ),
    (
        "o4-mini",
        Price {
            input: 1.1,
            output: 4.4,
        },
    ),
    (
        "o3",
        Price {
            input: 2.0,
            output: 8.0,
        },
    ),
];

/// The built-in price of `model`: an exact name, or a dated snapshot of one
/// (`claude-sonnet-4-5-20250929` is priced as `claude-sonnet-4-5`).
pub(crate) fn builtin(model: &str) -> Option<Price> {
    BUILTIN
        .iter()
        .find(|(name, _)| {
            model == *name
                || model
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '-'))
        })
        .map(|(_, price)| *price)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_add_input_and_output_at_their_prices() {
        let usage = Usage {
            input_tokens: 2_000_000,
            output_tokens: 100_000,
            ..Usage::default()
        };
        let cost = Price {
            input: 3.0,
            output: 15.0,
        }
        .cost(&usage);
        assert!((cost - 7.5).abs() < 1e-9, "{cost}");
        assert_eq!(Price::FREE.cost(&usage), 0.0);
    }

    #[test]
    fn dated_snapshots_share_their_model_s_price() {
        assert_eq!(
            builtin("claude-sonnet-4-5-20250929"),
            builtin("claude-sonnet-4-5")
        );
        assert_eq!(
            builtin("gpt-5"),
            Some(Price {
                input: 1.25,
                output: 10.0
            })
        );
        assert_eq!(builtin("gpt-5-mini").map(|p| p.input), Some(0.25));
        assert_eq!(builtin("gpt-5-codex"), None);
        assert_eq!(builtin("llama3"), None);
    }
}
