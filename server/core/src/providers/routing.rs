//! Which provider serves a model name, and opening a stream on it.
//!
//! `provider/model` names the provider explicitly (`openai/`, `anthropic/`, `gemini/`,
//! `ingram/`). Otherwise `claude-*` is Anthropic, `gemini-*` is Gemini, and anything else
//! (`gpt-*`, `o*`, local models) speaks the OpenAI wire.

use sea_orm::sea_query::StringLen;
use serde::{Deserialize, Serialize};

use super::anthropic::Anthropic;
use super::gemini::Gemini;
use super::offline::{self, Offline};
use super::openai::OpenAi;
use super::{Endpoint, ModelProvider, ModelRequest, ModelStream, ProviderError};

// Stored as its snake_case name in model_keys.provider.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sea_orm::EnumIter, sea_orm::DeriveActiveEnum,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)", rename_all = "snake_case")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    Gemini,
    /// The built-in offline model.
    Ingram,
}

impl ProviderKind {
    pub const ALL: [Self; 4] = [Self::Openai, Self::Anthropic, Self::Gemini, Self::Ingram];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::Ingram => "ingram",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }

    /// Whether runs on this provider need a key.
    pub const fn needs_key(self) -> bool {
        !matches!(self, Self::Ingram)
    }

    pub const fn default_base_url(self) -> &'static str {
        match self {
            Self::Openai => super::openai::DEFAULT_BASE_URL,
            Self::Anthropic => super::anthropic::DEFAULT_BASE_URL,
            Self::Gemini => super::gemini::DEFAULT_BASE_URL,
            Self::Ingram => "",
        }
    }
}

/// A model name resolved to its provider and the name that provider knows it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    pub provider: ProviderKind,
    pub model: String,
}

pub fn resolve(name: &str) -> ResolvedModel {
    if let Some((prefix, model)) = name.split_once('/')
        && let Some(provider) = ProviderKind::parse(prefix)
    {
        return ResolvedModel { provider, model: model.to_owned() };
    }
    let provider = if name.starts_with("claude-") {
        ProviderKind::Anthropic
    } else if name.starts_with("gemini-") {
        ProviderKind::Gemini
    } else {
        ProviderKind::Openai
    };
    ResolvedModel { provider, model: name.to_owned() }
}

/// The full name of the built-in model.
pub fn offline_model_name() -> String {
    format!("{}/{}", ProviderKind::Ingram.as_str(), offline::MODEL_NAME)
}

pub async fn open_stream(
    provider: ProviderKind,
    offline: &Offline,
    http: &reqwest::Client,
    endpoint: &Endpoint,
    request: &ModelRequest,
) -> Result<ModelStream, ProviderError> {
    match provider {
        ProviderKind::Openai => OpenAi.stream(http, endpoint, request).await,
        ProviderKind::Anthropic => Anthropic.stream(http, endpoint, request).await,
        ProviderKind::Gemini => Gemini.stream(http, endpoint, request).await,
        ProviderKind::Ingram => Ok(offline.stream(request)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_pick_their_provider() {
        let cases = [
            ("claude-sonnet-4-6", ProviderKind::Anthropic, "claude-sonnet-4-6"),
            ("gemini-2.5-flash", ProviderKind::Gemini, "gemini-2.5-flash"),
            ("gpt-4o", ProviderKind::Openai, "gpt-4o"),
            ("o3-mini", ProviderKind::Openai, "o3-mini"),
            ("llama3.1:8b", ProviderKind::Openai, "llama3.1:8b"),
            ("anthropic/claude-x", ProviderKind::Anthropic, "claude-x"),
            ("openai/claude-on-a-proxy", ProviderKind::Openai, "claude-on-a-proxy"),
            ("ingram/offline", ProviderKind::Ingram, "offline"),
            ("meta-llama/Llama-3-8B", ProviderKind::Openai, "meta-llama/Llama-3-8B"),
        ];
        for (name, provider, model) in cases {
            assert_eq!(resolve(name), ResolvedModel { provider, model: model.into() }, "{name}");
        }
    }
}
