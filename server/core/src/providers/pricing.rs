//! List prices for well-known models, in US dollars per million tokens (input, output).
//! A model missing here reports no cost rather than a guessed one.

use super::routing::{ProviderKind, ResolvedModel};

const PRICES: &[(&str, f64, f64)] = &[
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.00, 8.00),
    ("claude-haiku-4-5", 1.00, 5.00),
    ("claude-sonnet-4", 3.00, 15.00),
    ("gemini-2.5-flash", 0.30, 2.50),
    ("gemini-2.5-pro", 1.25, 10.00),
];

pub fn cost_usd(model: &ResolvedModel, input_tokens: u64, output_tokens: u64) -> Option<f64> {
    if model.provider == ProviderKind::Ingram {
        return Some(0.0);
    }
    // The longest matching prefix wins, so `gpt-4o-mini` is not priced as `gpt-4o`.
    let (_, input, output) = PRICES
        .iter()
        .filter(|(prefix, _, _)| model.model.starts_with(prefix))
        .max_by_key(|(prefix, _, _)| prefix.len())?;
    Some((input_tokens as f64 * input + output_tokens as f64 * output) / 1_000_000.0)
}
