//! What one turn may change of its smith's design, and who may change what. Every surface
//! that starts a run (native runs, Chat Completions, Responses) resolves its model and
//! instructions here.

use crate::auth::Caller;
use crate::domain::agents::validate;
use crate::domain::config::EffectiveConfig;
use crate::error::{Error, Result};

/// Instructions a request brings for its turn.
pub enum TurnInstructions {
    /// Added after the agent's and smith's instructions: system and developer messages,
    /// Responses `instructions`, and any `instructions` a smith token sends.
    Append(Vec<String>),
    /// Replaces them for this turn: a native run's `instructions` from a tenant-admin token.
    Replace(String),
}

/// The model and instructions a turn runs with.
pub struct TurnDesign {
    pub model: String,
    pub instructions: Option<String>,
}

/// Applies a request's overrides to the smith's design. A smith token (a browser) never
/// removes the design: what it sends is appended. A model other than the smith's own must
/// be a valid name and, when the agent or smith sets `allowed_models`, one of them.
pub fn resolve(
    caller: &Caller,
    effective: &EffectiveConfig,
    model: Option<String>,
    instructions: TurnInstructions,
) -> Result<TurnDesign> {
    let model = self::model(effective, model)?;
    let added = match instructions {
        TurnInstructions::Replace(text) if caller.smith_id.is_none() => {
            check_size(text.chars().count())?;
            return Ok(TurnDesign { model, instructions: Some(text).filter(|text| !text.is_empty()) });
        }
        TurnInstructions::Replace(text) => vec![text],
        TurnInstructions::Append(texts) => texts,
    };
    check_size(added.iter().map(|text| text.chars().count()).sum())?;
    let parts: Vec<&str> = effective
        .instructions
        .iter()
        .map(String::as_str)
        .chain(added.iter().map(String::as_str))
        .filter(|part| !part.is_empty())
        .collect();
    Ok(TurnDesign { model, instructions: (!parts.is_empty()).then(|| parts.join("\n\n")) })
}

/// The model a turn runs: the smith's own, or the one asked for, which must be one of the
/// agent's or smith's `allowed_models` when they set them (also for a replayed run, whose
/// model is checked against the design as it is now). The name itself is checked where
/// every run enters (`Engine::start`).
pub fn model(effective: &EffectiveConfig, requested: Option<String>) -> Result<String> {
    match requested {
        Some(model) if model != effective.model => {
            if let Some(allowed) = &effective.allowed_models
                && !allowed.contains(&model)
            {
                return Err(Error::bad_request(
                    "model_not_allowed",
                    format!("This smith may not run '{model}'; its allowed_models are: {}.", allowed.join(", ")),
                )
                .with_param("model"));
            }
            Ok(model)
        }
        _ => Ok(effective.model.clone()),
    }
}

fn check_size(characters: usize) -> Result<()> {
    if characters > validate::MAX_INSTRUCTIONS {
        return Err(Error::limit_exceeded(
            "instructions",
            format!("A turn's added instructions must be at most {} characters.", validate::MAX_INSTRUCTIONS),
        ));
    }
    Ok(())
}
