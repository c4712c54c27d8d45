//! The failure taxonomy: every classifier output, finding and report names one of these classes.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why an image failed to build, push or pull. The serialized ids are public API: they appear in
/// the JSON report, the signature catalog (`checks/<id>.toml`), the dashboard and the runbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// The Docker client's API version is outside what the daemon accepts.
    DockerApiSkew,
    /// No runner matches the job's tags (or protection, or is online): the job stays pending.
    RunnerTags,
    /// One side speaks HTTPS, the other plain HTTP.
    HttpVsHttps,
    /// The registry's token service (the Bearer realm) cannot be reached.
    TokenRealmUnreachable,
    /// Credentials are missing, wrong, expired, or lack the rights for the repository.
    AuthDenied,
    /// The repository or tag does not exist in the registry.
    ImageNotFound,
    /// A TLS certificate was not trusted or did not match.
    TlsCert,
    /// The registry's name could not be resolved.
    Dns,
    /// The registry itself could not be reached (refused, no route, timeout, reset).
    OtherNetwork,
    /// The registry refused because of a pull-rate limit.
    RateLimit,
    /// No pull or CI failure.
    None,
}

impl Class {
    /// Every class, in taxonomy order.
    pub const ALL: [Class; 11] = [
        Class::DockerApiSkew,
        Class::RunnerTags,
        Class::HttpVsHttps,
        Class::TokenRealmUnreachable,
        Class::AuthDenied,
        Class::ImageNotFound,
        Class::TlsCert,
        Class::Dns,
        Class::OtherNetwork,
        Class::RateLimit,
        Class::None,
    ];

    /// The stable id (`http_vs_https`, …).
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            Class::DockerApiSkew => "docker_api_skew",
            Class::RunnerTags => "runner_tags",
            Class::HttpVsHttps => "http_vs_https",
            Class::TokenRealmUnreachable => "token_realm_unreachable",
            Class::AuthDenied => "auth_denied",
            Class::ImageNotFound => "image_not_found",
            Class::TlsCert => "tls_cert",
            Class::Dns => "dns",
            Class::OtherNetwork => "other_network",
            Class::RateLimit => "rate_limit",
            Class::None => "none",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for Class {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Class::ALL.into_iter().find(|c| c.id() == s).ok_or_else(|| {
            let ids: Vec<_> = Class::ALL.iter().map(|c| c.id()).collect();
            format!(
                "unknown failure class '{s}' (expected one of: {})",
                ids.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The id, the serde name and `FromStr` agree for every class.
    #[test]
    fn ids_round_trip() {
        for class in Class::ALL {
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{}\"", class.id()));
            assert_eq!(class.id().parse::<Class>().unwrap(), class);
        }
        assert!("http".parse::<Class>().is_err());
    }
}
