//! auto_memory: after a completed run, durable facts about the person are extracted from
//! the turn by the smith's own model, with the prompt below, and stored with source `auto`
//! unless already known. The built-in offline model answers this prompt with a fixed rule
//! (see `providers::offline`), so extraction runs the same path with no keys.

pub use crate::providers::offline::memory_rule::{ASSISTANT_ANSWERED, EXTRACTION_TASK, PERSON_WROTE};

/// Facts one extraction stores at most.
pub const FACTS_PER_RUN_MAX: usize = 8;
/// Characters of the turn shown to the extracting model, at most, each side.
const TURN_CHARS_MAX: usize = 8_000;
/// Known facts shown to the extracting model so it does not repeat them.
pub const KNOWN_FACTS_SHOWN: usize = 20;

/// The extraction's system prompt.
pub fn system_prompt() -> String {
    format!(
        "{EXTRACTION_TASK}\n\
         Read what the person wrote and what the assistant answered. List the durable facts \
         about the person worth remembering in later conversations: their name, who they \
         are, where they live and work, their preferences, allergies, plans and \
         relationships. Skip small talk, questions, anything about the assistant, and the \
         facts already known. Write each fact as one short sentence in the third person \
         (\"The user is allergic to peanuts.\"). Answer with only a JSON array of strings, \
         [] when there is nothing new."
    )
}

/// The message the extracting model reads.
pub fn turn_message(known: &[String], person: &str, assistant: &str) -> String {
    let known = if known.is_empty() {
        "Facts already known: none.".to_owned()
    } else {
        format!("Facts already known:\n{}", known.iter().map(|fact| format!("- {fact}")).collect::<Vec<_>>().join("\n"))
    };
    format!("{known}\n\n{PERSON_WROTE}\n{}\n\n{ASSISTANT_ANSWERED}\n{}", clip(person), clip(assistant))
}

fn clip(text: &str) -> String {
    text.chars().take(TURN_CHARS_MAX).collect()
}

/// The facts in the model's answer: the first JSON array of strings in it (models wrap
/// answers in prose or code fences), each trimmed, non-empty and within the text limit.
pub fn parse_facts(answer: &str) -> Vec<String> {
    let Some(start) = answer.find('[') else { return Vec::new() };
    let Some(end) = answer.rfind(']') else { return Vec::new() };
    if end < start {
        return Vec::new();
    }
    let Ok(facts) = serde_json::from_str::<Vec<serde_json::Value>>(&answer[start..=end]) else { return Vec::new() };
    facts
        .into_iter()
        .filter_map(|fact| fact.as_str().map(|text| text.trim().to_owned()))
        .filter(|text| !text.is_empty() && text.chars().count() <= super::MEMORY_TEXT_MAX)
        .take(FACTS_PER_RUN_MAX)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_read_from_a_json_array_anywhere_in_the_answer() {
        assert_eq!(parse_facts("```json\n[\"The user is Ada.\", \"  \", 3]\n```"), vec!["The user is Ada."]);
        assert!(parse_facts("nothing new").is_empty());
        assert!(parse_facts("] [").is_empty());
        assert!(parse_facts("[\"unterminated").is_empty());
    }
}
