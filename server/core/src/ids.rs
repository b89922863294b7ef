//! Prefixed, time-sortable ids (`smt_01J…`): a ULID after the prefix, monotonic within a
//! process; and one type per resource's id, so a run id cannot be passed where a smith id is
//! meant.
//!
//! A typed id read from a request is not checked against its prefix: an id that names nothing
//! is answered like any unknown id, with the resource's 404.

use std::fmt;
use std::sync::Mutex;

use sea_orm::{DbErr, DeriveValueType, TryFromU64};
use serde::{Deserialize, Serialize};
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
    Memory,
    UsageRecord,
    Approval,
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
            Self::Memory => "mem_",
            Self::UsageRecord => "usg_",
            Self::Approval => "apr_",
        }
    }
}

pub fn new_id(kind: IdKind) -> String {
    let mut guard = GENERATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let ulid = guard.get_or_insert_with(Generator::new).generate().unwrap_or_else(|_| ulid::Ulid::new());
    format!("{}{}", kind.prefix(), ulid.to_string().to_lowercase())
}

macro_rules! typed_ids {
    ($($(#[$doc:meta])* $name:ident => $kind:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, DeriveValueType)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh id of this kind.
            pub fn generate() -> Self {
                Self(new_id(IdKind::$kind))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> Self {
                id.clone()
            }
        }

        impl From<&$name> for sea_orm::Value {
            fn from(id: &$name) -> Self {
                id.0.clone().into()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFromU64 for $name {
            fn try_from_u64(_: u64) -> Result<Self, DbErr> {
                Err(DbErr::ConvertFromU64(stringify!($name)))
            }
        }
    )*};
}

typed_ids! {
    /// An organization's id (`org_…`).
    OrganizationId => Organization;
    /// A project's id (`prj_…`).
    ProjectId => Project;
    /// An API token's id (`tok_…`), never its secret.
    TokenId => Token;
    /// An agent's id (`agt_…`).
    AgentId => Agent;
    /// A smith's id (`smt_…`).
    SmithId => Smith;
    /// A run's id (`run_…`).
    RunId => Run;
    /// A file's id (`file_…`).
    FileId => File;
    /// A memory's id (`mem_…`).
    MemoryId => Memory;
    /// A usage record's id (`usg_…`).
    UsageRecordId => UsageRecord;
    /// An approval's id (`apr_…`).
    ApprovalId => Approval;
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
