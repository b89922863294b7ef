//! What an agent declares about its smiths' memory blocks, and the rules every block follows
//! (labels, limits), kept apart from the blocks themselves so that agents can check their
//! declarations without reaching for smiths.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{agent, decode_json_opt};

/// A block's limit when nothing declares one, in characters.
pub const BLOCK_LIMIT_DEFAULT: u32 = 5_000;
/// The largest limit a declaration may set.
pub const BLOCK_LIMIT_MAX: u32 = 20_000;
/// Blocks an agent may declare.
pub const DECLARED_BLOCKS_MAX: usize = 16;
pub const LABEL_MAX: usize = 64;
pub const DESCRIPTION_MAX: usize = 512;

pub const HUMAN: &str = "human";
pub const PERSONA: &str = "persona";

/// A block an agent declares for every smith of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockDeclaration {
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// In characters; [`BLOCK_LIMIT_DEFAULT`] when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The value a smith starts with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The smith itself (its memory tools) may not write it; the project's API may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// `human` and `persona`, as every smith has them unless its agent redeclares them.
pub fn standard() -> [BlockDeclaration; 2] {
    [
        BlockDeclaration {
            label: HUMAN.into(),
            description: Some("What you know about the person you are talking with.".into()),
            limit: None,
            value: None,
            read_only: Some(false),
        },
        BlockDeclaration {
            label: PERSONA.into(),
            description: Some("Who you are, and how you speak.".into()),
            limit: None,
            value: None,
            read_only: Some(true),
        },
    ]
}

/// The blocks an agent's smiths have before anything is written: the standard two (or the
/// agent's own declarations of them), then its other declarations, in order.
pub fn declared_by(agent: &agent::Model) -> Result<Vec<BlockDeclaration>> {
    let own: Vec<BlockDeclaration> =
        decode_json_opt(&agent.id, "memory_blocks", agent.memory_blocks.as_ref())?.unwrap_or_default();
    let mut all: Vec<BlockDeclaration> =
        standard().into_iter().filter(|standard| own.iter().all(|mine| mine.label != standard.label)).collect();
    all.extend(own);
    Ok(all)
}

/// An agent's declarations, checked before they are saved.
pub fn validate_declarations(declarations: &[BlockDeclaration]) -> Result<()> {
    let param = "memory_blocks";
    if declarations.len() > DECLARED_BLOCKS_MAX {
        return Err(Error::limit_exceeded(param, format!("An agent declares at most {DECLARED_BLOCKS_MAX} blocks.")));
    }
    for (i, declaration) in declarations.iter().enumerate() {
        validate_label(&declaration.label).map_err(|err| err.with_param(format!("{param}[{i}].label")))?;
        if declarations[..i].iter().any(|earlier| earlier.label == declaration.label) {
            return Err(Error::invalid_param(param, format!("The label '{}' is declared twice.", declaration.label)));
        }
        let limit = declaration.limit.unwrap_or(BLOCK_LIMIT_DEFAULT);
        if limit == 0 || limit > BLOCK_LIMIT_MAX {
            return Err(Error::limit_exceeded(param, format!("A block's limit is 1 to {BLOCK_LIMIT_MAX} characters.")));
        }
        crate::domain::limits::text(param, declaration.description.as_deref(), DESCRIPTION_MAX)?;
        if declaration.value.as_deref().is_some_and(|value| chars(value) > limit as usize) {
            return Err(Error::limit_exceeded(
                param,
                format!("The default value of '{}' is longer than its limit.", declaration.label),
            ));
        }
    }
    Ok(())
}

/// Labels: 1 to 64 of a-z, 0-9 and `_`, starting with a letter.
pub fn validate_label(label: &str) -> Result<()> {
    let valid = label.len() <= LABEL_MAX
        && label.starts_with(|c: char| c.is_ascii_lowercase())
        && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(Error::invalid_param(
            "label",
            format!("A block label is 1 to {LABEL_MAX} characters of a-z, 0-9 and _, starting with a letter."),
        ));
    }
    Ok(())
}

pub fn chars(text: &str) -> usize {
    text.chars().count()
}
