//! The catalog: curated presets of common MCP integrations, shipped as data and the same for
//! every project. A preset names the server's URL (a template when part of it is the
//! tenant's, such as a shop's subdomain), how it authenticates and the headers it needs.
//! Presets whose auth is per-user OAuth are listed, and refused for registration until
//! connections exist.

/// How a preset's server authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// Nothing: a public server.
    None,
    /// A static credential in headers the project supplies at registration.
    Headers,
    /// Per-user OAuth: needs a connection (not available yet), so it cannot be registered.
    Oauth,
}

impl AuthKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Headers => "headers",
            Self::Oauth => "oauth",
        }
    }
}

/// A header a preset sends.
#[derive(Debug, Clone, Copy)]
pub struct HeaderNeed {
    pub name: &'static str,
    pub description: &'static str,
    pub required: bool,
}

/// A `{name}` placeholder in a preset's URL template.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    pub description: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub slug: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub url_template: &'static str,
    pub auth: AuthKind,
    pub headers: &'static [HeaderNeed],
    pub variables: &'static [Variable],
    pub documentation_url: &'static str,
}

const BEARER: &str = "Bearer followed by the token, e.g. `Bearer ghp_…`.";

/// Every preset, by slug.
pub const PRESETS: &[Preset] = &[
    Preset {
        slug: "cloudflare-docs",
        name: "Cloudflare Docs",
        description: "Searches Cloudflare's developer documentation.",
        url_template: "https://docs.mcp.cloudflare.com/mcp",
        auth: AuthKind::None,
        headers: &[],
        variables: &[],
        documentation_url: "https://developers.cloudflare.com/agents/model-context-protocol/",
    },
    Preset {
        slug: "context7",
        name: "Context7",
        description: "Up-to-date documentation and code examples of libraries and frameworks.",
        url_template: "https://mcp.context7.com/mcp",
        auth: AuthKind::Headers,
        headers: &[HeaderNeed {
            name: "CONTEXT7_API_KEY",
            description: "A Context7 API key, for higher rate limits.",
            required: false,
        }],
        variables: &[],
        documentation_url: "https://github.com/upstash/context7",
    },
    Preset {
        slug: "deepwiki",
        name: "DeepWiki",
        description: "Answers questions about public GitHub repositories from their generated wikis.",
        url_template: "https://mcp.deepwiki.com/mcp",
        auth: AuthKind::None,
        headers: &[],
        variables: &[],
        documentation_url: "https://docs.devin.ai/work-with-devin/deepwiki-mcp",
    },
    Preset {
        slug: "github",
        name: "GitHub",
        description: "Repositories, issues, pull requests and code search on GitHub.",
        url_template: "https://api.githubcopilot.com/mcp/",
        auth: AuthKind::Headers,
        headers: &[HeaderNeed { name: "Authorization", description: BEARER, required: true }],
        variables: &[],
        documentation_url: "https://github.com/github/github-mcp-server",
    },
    Preset {
        slug: "hugging-face",
        name: "Hugging Face",
        description: "Searches models, datasets, Spaces and papers on the Hugging Face Hub.",
        url_template: "https://huggingface.co/mcp",
        auth: AuthKind::Headers,
        headers: &[HeaderNeed {
            name: "Authorization",
            description: "Bearer followed by a Hugging Face access token, for private resources.",
            required: false,
        }],
        variables: &[],
        documentation_url: "https://huggingface.co/settings/mcp",
    },
    Preset {
        slug: "linear",
        name: "Linear",
        description: "Issues, projects and comments in Linear.",
        url_template: "https://mcp.linear.app/mcp",
        auth: AuthKind::Oauth,
        headers: &[],
        variables: &[],
        documentation_url: "https://linear.app/docs/mcp",
    },
    Preset {
        slug: "notion",
        name: "Notion",
        description: "Searches, reads and edits pages and databases in Notion.",
        url_template: "https://mcp.notion.com/mcp",
        auth: AuthKind::Oauth,
        headers: &[],
        variables: &[],
        documentation_url: "https://developers.notion.com/docs/mcp",
    },
    Preset {
        slug: "sentry",
        name: "Sentry",
        description: "Errors, issues and releases in Sentry.",
        url_template: "https://mcp.sentry.dev/mcp",
        auth: AuthKind::Oauth,
        headers: &[],
        variables: &[],
        documentation_url: "https://docs.sentry.io/product/sentry-mcp/",
    },
    Preset {
        slug: "shopify-storefront",
        name: "Shopify Storefront",
        description: "A Shopify store's catalog, cart and policies, as its shoppers see them.",
        url_template: "https://{shop}.myshopify.com/api/mcp",
        auth: AuthKind::None,
        headers: &[],
        variables: &[Variable { name: "shop", description: "The store's myshopify.com subdomain." }],
        documentation_url: "https://shopify.dev/docs/apps/build/storefront-mcp",
    },
    Preset {
        slug: "stripe",
        name: "Stripe",
        description: "Customers, payments, invoices and the Stripe documentation.",
        url_template: "https://mcp.stripe.com",
        auth: AuthKind::Headers,
        headers: &[HeaderNeed {
            name: "Authorization",
            description: "Bearer followed by a Stripe (restricted) secret key.",
            required: true,
        }],
        variables: &[],
        documentation_url: "https://docs.stripe.com/mcp",
    },
];

pub fn find(slug: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|preset| preset.slug == slug)
}

/// The longest value a URL variable may have: a DNS label.
pub const VARIABLE_MAX: usize = 63;

impl Preset {
    /// The URL with `values` in its placeholders; an error names the variable that is missing
    /// or not a DNS label (letters, digits and `-`), so a value cannot change the host's shape.
    pub fn url(&self, values: &std::collections::BTreeMap<String, String>) -> Result<String, String> {
        let mut url = self.url_template.to_owned();
        for variable in self.variables {
            let value =
                values.get(variable.name).ok_or_else(|| format!("the variable '{}' is required", variable.name))?;
            let label = !value.is_empty()
                && value.len() <= VARIABLE_MAX
                && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !value.starts_with('-');
            if !label {
                return Err(format!(
                    "the variable '{}' must be 1 to {VARIABLE_MAX} letters, digits or '-'",
                    variable.name
                ));
            }
            url = url.replace(&format!("{{{}}}", variable.name), value);
        }
        if let Some(unknown) = values.keys().find(|name| self.variables.iter().all(|variable| variable.name != *name)) {
            return Err(format!("the preset has no variable '{unknown}'"));
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_well_formed() {
        for (index, preset) in PRESETS.iter().enumerate() {
            assert!(PRESETS[..index].iter().all(|other| other.slug != preset.slug), "{} twice", preset.slug);
            assert!(preset.url_template.starts_with("https://"), "{}", preset.slug);
            let placeholders = preset.url_template.matches('{').count();
            assert_eq!(placeholders, preset.variables.len(), "{}", preset.slug);
            assert_eq!(preset.auth == AuthKind::Headers, !preset.headers.is_empty(), "{}", preset.slug);
        }
    }

    #[test]
    fn templates_take_labels_only() {
        let shop = find("shopify-storefront").unwrap();
        let values = |value: &str| [("shop".to_owned(), value.to_owned())].into_iter().collect();
        assert_eq!(shop.url(&values("acme")).unwrap(), "https://acme.myshopify.com/api/mcp");
        for bad in ["", "evil.com/x", "a@b", "-x", &"a".repeat(64)] {
            assert!(shop.url(&values(bad)).is_err(), "{bad}");
        }
        assert!(shop.url(&Default::default()).is_err());
        assert!(find("deepwiki").unwrap().url(&values("x")).is_err(), "an unknown variable");
    }
}
