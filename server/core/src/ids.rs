//! Prefixed, time-sortable ids (`smt_01J…`): a ULID after the prefix, monotonic within a process.

use std::sync::Mutex;

use ulid::Generator;

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

/// The resource kinds that have ids, with their prefixes.
#[derive(Debug, Clone, Copy)]
pub enum IdKind {
    Organization,
    Project,
    Token,
    Agent,
    Smith,
    Run,
    Thread,
    File,
}

impl IdKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::Organization => "org_",
            Self::Project => "prj_",
            Self::Token => "tok_",
            Self::Agent => "agt_",
            Self::Smith => "smt_",
            Self::Run => "run_",
            Self::Thread => "thr_",
            Self::File => "file_",
        }
    }
}

pub fn new_id(kind: IdKind) -> String {
    let mut guard = GENERATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let ulid = guard.get_or_insert_with(Generator::new).generate().unwrap_or_else(|_| ulid::Ulid::new());
    format!("{}{}", kind.prefix(), ulid.to_string().to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_sort_by_creation() {
        let ids: Vec<String> = (0..1000).map(|_| new_id(IdKind::Smith)).collect();
        assert!(ids.iter().all(|id| id.starts_with("smt_") && id.len() == 30));
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}
