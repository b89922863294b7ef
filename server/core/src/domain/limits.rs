//! The limits every input has, the same whichever surface brings it (native runs, Chat
//! Completions, Responses, smiths). A violation is a 400 `limit_exceeded` naming the field.
//! The wire types declare the same numbers in the spec (`maxLength`, `maxItems`,
//! `maxProperties`).

use std::collections::{BTreeMap, HashSet};

use crate::error::{Error, Result};
use crate::types::{ContentPart, FunctionTool, InputMessage, MessageContent};

pub const METADATA_PAIRS_MAX: usize = 16;
pub const METADATA_KEY_MAX: usize = 64;
pub const METADATA_VALUE_MAX: usize = 512;
/// Input messages of one run (Chat Completions: the whole conversation).
pub const MESSAGES_MAX: usize = 2048;
/// Text of one message, in bytes.
pub const MESSAGE_TEXT_MAX: usize = 1024 * 1024;
pub const CONTENT_PARTS_MAX: usize = 256;
/// Tool calls of one earlier assistant message, and the size of their arguments in bytes.
pub const MESSAGE_TOOL_CALLS_MAX: usize = 128;
pub const TOOL_ARGUMENTS_MAX: usize = 1024 * 1024;
pub const CLIENT_TOOLS_MAX: usize = 128;
pub const TOOL_NAME_MAX: usize = 64;
pub const TOOL_DESCRIPTION_MAX: usize = 4096;
/// A tool's parameters schema, serialized, in bytes.
pub const TOOL_PARAMETERS_MAX: usize = 64 * 1024;
pub const DISPLAY_NAME_MAX: usize = 256;
pub const CUSTOMER_ID_MAX: usize = 256;
/// Ids a caller names (call ids, file ids) and other short strings.
pub const ID_MAX: usize = 256;

fn exceeded(param: &str, message: String) -> Error {
    Error::limit_exceeded(param, message)
}

pub fn metadata(metadata: Option<&BTreeMap<String, String>>) -> Result<()> {
    let Some(metadata) = metadata else { return Ok(()) };
    let within = metadata.len() <= METADATA_PAIRS_MAX
        && metadata
            .iter()
            .all(|(key, value)| key.chars().count() <= METADATA_KEY_MAX && value.chars().count() <= METADATA_VALUE_MAX);
    if !within {
        return Err(exceeded(
            "metadata",
            format!(
                "metadata holds at most {METADATA_PAIRS_MAX} pairs, keys up to {METADATA_KEY_MAX} and values up to {METADATA_VALUE_MAX} characters."
            ),
        ));
    }
    Ok(())
}

/// At most `max` characters.
pub fn text(param: &str, value: Option<&str>, max: usize) -> Result<()> {
    match value {
        Some(value) if value.chars().count() > max => {
            Err(exceeded(param, format!("{param} must be at most {max} characters.")))
        }
        _ => Ok(()),
    }
}

pub fn messages(param: &str, messages: &[InputMessage]) -> Result<()> {
    if messages.len() > MESSAGES_MAX {
        return Err(exceeded(param, format!("{param} holds at most {MESSAGES_MAX} messages.")));
    }
    for message in messages {
        let text_bytes = match &message.content {
            MessageContent::Text(text) => text.len(),
            MessageContent::Parts(parts) => {
                if parts.len() > CONTENT_PARTS_MAX {
                    return Err(exceeded(param, format!("A message holds at most {CONTENT_PARTS_MAX} content parts.")));
                }
                parts.iter().map(|part| if let ContentPart::Text { text } = part { text.len() } else { 0 }).sum()
            }
        };
        if text_bytes > MESSAGE_TEXT_MAX {
            return Err(exceeded(param, format!("A message's text must be at most {} KiB.", MESSAGE_TEXT_MAX >> 10)));
        }
        if message.tool_calls.len() > MESSAGE_TOOL_CALLS_MAX {
            return Err(exceeded(param, format!("A message holds at most {MESSAGE_TOOL_CALLS_MAX} tool calls.")));
        }
        for call in &message.tool_calls {
            if call.arguments.len() > TOOL_ARGUMENTS_MAX || call.id.len() > ID_MAX || call.name.len() > TOOL_NAME_MAX {
                return Err(exceeded(
                    param,
                    format!(
                        "A tool call has an id of at most {ID_MAX} characters, a name of at most {TOOL_NAME_MAX} and arguments of at most {} KiB.",
                        TOOL_ARGUMENTS_MAX >> 10
                    ),
                ));
            }
        }
        text(param, message.tool_call_id.as_deref(), ID_MAX)?;
    }
    Ok(())
}

/// Client tools: at most [`CLIENT_TOOLS_MAX`], unique names of `[a-zA-Z0-9_-]{1,64}`, bounded
/// descriptions and parameter schemas.
pub fn client_tools(param: &str, tools: &[FunctionTool]) -> Result<()> {
    if tools.len() > CLIENT_TOOLS_MAX {
        return Err(exceeded(param, format!("{param} holds at most {CLIENT_TOOLS_MAX} tools.")));
    }
    let mut names = HashSet::new();
    for tool in tools {
        let function = &tool.function;
        let name = &function.name;
        let valid = !name.is_empty()
            && name.len() <= TOOL_NAME_MAX
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid || !names.insert(name.as_str()) {
            return Err(Error::invalid_param(
                param,
                format!("Tool names must be unique, 1 to {TOOL_NAME_MAX} of [a-zA-Z0-9_-]: '{}'.", preview(name)),
            ));
        }
        text(param, function.description.as_deref(), TOOL_DESCRIPTION_MAX)?;
        let schema_bytes = function.parameters.as_ref().map_or(0, |schema| schema.to_string().len());
        if schema_bytes > TOOL_PARAMETERS_MAX {
            return Err(exceeded(
                param,
                format!("A tool's parameters schema must be at most {} KiB.", TOOL_PARAMETERS_MAX >> 10),
            ));
        }
    }
    Ok(())
}

fn preview(text: &str) -> String {
    text.chars().take(64).filter(|c| !c.is_control()).collect()
}
