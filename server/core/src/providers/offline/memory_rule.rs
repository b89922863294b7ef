//! The offline model's memory: what it says it remembers, and its fixed extraction rule.
//!
//! The markers it reads are defined here, below the memory domain that writes them
//! (`domain::memory::context` and `extract`), so that models depend on nothing above them.

/// The first line of the memory-extraction prompt, by which this model recognises the task.
pub const EXTRACTION_TASK: &str = "You extract durable facts about a person from a conversation.";
/// In the extraction request: what the person wrote follows this line…
pub const PERSON_WROTE: &str = "The person wrote:";
/// …and the assistant's answer this one.
pub const ASSISTANT_ANSWERED: &str = "The assistant answered:";
/// The memory section of a run's system prompt opens and closes with these lines.
pub const SECTION_START: &str = "<memory>";
pub const SECTION_END: &str = "</memory>";

/// "Statement start" → how the fact is written, in the third person.
const PATTERNS: &[(&str, &str)] = &[
    ("my name is ", "The user's name is "),
    ("call me ", "The user likes to be called "),
    ("i am allergic to ", "The user is allergic to "),
    ("i'm allergic to ", "The user is allergic to "),
    ("i live in ", "The user lives in "),
    ("i work as ", "The user works as "),
    ("i work at ", "The user works at "),
    ("i like ", "The user likes "),
    ("i love ", "The user loves "),
    ("i am ", "The user is "),
    ("i'm ", "The user is "),
];

const FACT_CHARS_MAX: usize = 200;

/// The facts in the extraction request's "person wrote" part that its "already known" part
/// does not list, as a JSON-ready list.
pub fn extract(asked: &str) -> Vec<String> {
    let Some((known, rest)) = asked.split_once(PERSON_WROTE) else { return Vec::new() };
    let person = rest.rsplit_once(ASSISTANT_ANSWERED).map_or(rest, |(person, _)| person);
    let known = known.to_lowercase();
    let mut facts: Vec<String> = Vec::new();
    for fact in statements(person) {
        if !known.contains(&fact.to_lowercase()) && !facts.contains(&fact) {
            facts.push(fact);
        }
    }
    facts
}

/// Every statement of the patterns in `text`: per sentence, per clause (a clause joined by
/// " and " starts a new one only when it holds a statement of its own).
pub fn statements(text: &str) -> Vec<String> {
    let mut facts = Vec::new();
    for sentence in text.split(['.', '!', '?', '\n', ';']) {
        let mut clauses: Vec<String> = Vec::new();
        for part in sentence.split(" and ") {
            match clauses.last_mut() {
                Some(last) if find(part).is_none() => {
                    last.push_str(" and ");
                    last.push_str(part);
                }
                _ => clauses.push(part.to_owned()),
            }
        }
        facts.extend(clauses.iter().filter_map(|clause| statement(clause)));
    }
    facts
}

/// The earliest pattern in `clause`, at a word start: (byte offset, pattern index).
fn find(clause: &str) -> Option<(usize, usize)> {
    // ASCII lowercasing keeps byte offsets, so they index `clause` too ("I live in İstanbul").
    let lower = clause.to_ascii_lowercase();
    PATTERNS
        .iter()
        .enumerate()
        .filter_map(|(index, (pattern, _))| {
            lower
                .match_indices(pattern)
                .find(|(at, _)| *at == 0 || !lower[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '\''))
                .map(|(at, _)| (at, index))
        })
        .min()
}

fn statement(clause: &str) -> Option<String> {
    let (at, index) = find(clause)?;
    let (pattern, written) = PATTERNS[index];
    let rest = clause[at + pattern.len()..].trim().trim_end_matches([',', ':', '"', '\'']).trim();
    if rest.is_empty() {
        return None;
    }
    let rest: String = rest.chars().take(FACT_CHARS_MAX).collect();
    Some(format!("{written}{rest}."))
}

/// What the system prompt's memory section holds, as sentences: block values, then memories.
pub fn remembered(system: &str) -> Option<String> {
    let start = system.find(SECTION_START)? + SECTION_START.len();
    let section = &system[start..start + system[start..].find(SECTION_END)?];
    let mut items: Vec<String> = Vec::new();
    let mut in_block = false;
    for line in section.lines() {
        if line.starts_with("<block ") {
            in_block = true;
        } else if line == "</block>" {
            in_block = false;
        } else if in_block && !line.trim().is_empty() {
            items.push(line.trim().to_owned());
        } else if let Some(fact) = line.strip_prefix("- ") {
            items.push(fact.trim().to_owned());
        }
    }
    let sentences: Vec<String> =
        items.into_iter().map(|item| if item.ends_with(['.', '!', '?']) { item } else { format!("{item}.") }).collect();
    (!sentences.is_empty()).then(|| sentences.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_statements_anywhere_and_splits_them() {
        assert_eq!(
            statements("Hi! My name is Ada and I am allergic to peanuts."),
            vec!["The user's name is Ada.", "The user is allergic to peanuts."]
        );
        assert_eq!(statements("By the way, I like salt and pepper"), vec!["The user likes salt and pepper."]);
        assert_eq!(statements("I'm a mathematician; what is 2+2?"), vec!["The user is a mathematician."]);
        assert!(statements("What is the time? Tim am here").is_empty());
        assert_eq!(statements("I live in İstanbul"), vec!["The user lives in İstanbul."]);
    }

    #[test]
    fn skips_what_is_known() {
        let asked = "Facts already known:\n- The user's name is Ada.\n\nThe person wrote:\nMy name is Ada. I live in London.\n\nThe assistant answered:\nI am glad.";
        assert_eq!(extract(asked), vec!["The user lives in London."]);
    }

    #[test]
    fn reads_the_memory_section() {
        let system = "Be kind.\n\n<memory>\nPreamble.\n<block label=\"human\" chars=\"3/5000\">\nAda\n</block>\n<memories>\n- The user is allergic to peanuts.\n</memories>\n</memory>";
        assert_eq!(remembered(system).as_deref(), Some("Ada. The user is allergic to peanuts."));
        assert!(remembered("Be kind.").is_none());
    }
}
