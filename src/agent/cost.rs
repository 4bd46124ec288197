//! What a session cost, estimated from token usage and per-model prices.

use std::collections::BTreeMap;

use super::llm::Usage;
use crate::config::Price;

/// USD per million tokens for models this build knows; the config adds or overrides.
fn builtin(model: &str) -> Option<Price> {
    let p = |input, output, cache_write, cache_read| Price {
        input,
        output,
        cache_write,
        cache_read,
    };
    let m = model.to_ascii_lowercase();
    match () {
        _ if m.starts_with("claude-sonnet") => Some(p(3.0, 15.0, 3.75, 0.30)),
        _ if m.starts_with("claude-haiku") => Some(p(1.0, 5.0, 1.25, 0.10)),
        _ if m.starts_with("claude-opus-4-1")
            || m.starts_with("claude-opus-4-0")
            || m == "claude-opus-4" =>
        {
            Some(p(15.0, 75.0, 18.75, 1.50))
        }
        _ if m.starts_with("claude-opus") => Some(p(5.0, 25.0, 6.25, 0.50)),
        _ => None,
    }
}

/// The cost in USD, or None when the model's price is unknown (local models: 0 by config).
pub fn estimate(model: &str, usage: &Usage, overrides: &BTreeMap<String, Price>) -> Option<f64> {
    let price = overrides.get(model).copied().or_else(|| builtin(model))?;
    let per = |tokens: u64, usd: f64| tokens as f64 * usd / 1_000_000.0;
    Some(
        per(usage.input_tokens, price.input)
            + per(usage.output_tokens, price.output)
            + per(usage.cache_creation_input_tokens, price.cache_write)
            + per(usage.cache_read_input_tokens, price.cache_read),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_tokens_by_kind() {
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 1_000_000,
        };
        let c = estimate("claude-sonnet-5", &u, &BTreeMap::new()).unwrap();
        assert!((c - (3.0 + 1.5 + 0.3)).abs() < 1e-9, "{c}");
        assert_eq!(estimate("llama3.1", &u, &BTreeMap::new()), None);
        let mut o = BTreeMap::new();
        o.insert(
            "llama3.1".into(),
            Price {
                input: 0.0,
                output: 0.0,
                cache_write: 0.0,
                cache_read: 0.0,
            },
        );
        assert_eq!(estimate("llama3.1", &u, &o), Some(0.0));
    }
}
