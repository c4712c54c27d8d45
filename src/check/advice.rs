//! What the evidence itself says, added to a finding's title and explanation: the Docker release
//! whose client the daemon accepts, the tags a stuck job waits for, the realm that could not be
//! reached, the `hosts.toml` path a node needs.

use crate::model::{Class, Subject};
use crate::parse::extract::Extracted;
use regex::Regex;
use std::sync::LazyLock;

/// Docker Engine release → its (maximum) API version, oldest first (DOMAIN.md §1.1).
pub const DOCKER_API: [(&str, &str); 16] = [
    ("19.03", "1.40"),
    ("20.10", "1.41"),
    ("23.0", "1.42"),
    ("24.0", "1.43"),
    ("25.0", "1.44"),
    ("26.0", "1.45"),
    ("27.0", "1.46"),
    ("27.2", "1.47"),
    ("28.0", "1.48"),
    ("28.1", "1.49"),
    ("28.2", "1.50"),
    ("28.3", "1.51"),
    ("29.0", "1.52"),
    ("29.2", "1.53"),
    ("29.3", "1.54"),
    ("29.6", "1.55"),
];

/// Each major line's newest release, as `docker:<major>` resolves it (`docker-library/docker`
/// `versions.json` history, DOMAIN.md §1.5): (major, minor line, newest patch).
pub const DOCKER_LINE_NEWEST: [(&str, &str, &str); 9] = [
    ("19", "19.03", "19.03.15"),
    ("20", "20.10", "20.10.24"),
    ("23", "23.0", "23.0.6"),
    ("24", "24.0", "24.0.9"),
    ("25", "25.0", "25.0.5"),
    ("26", "26.1", "26.1.4"),
    ("27", "27.5", "27.5.1"),
    ("28", "28.5", "28.5.2"),
    ("29", "29.7", "29.7.2"),
];

/// `27.5.1` or `27.5` → (27, 5); `19.03` → (19, 3).
#[must_use]
pub fn release_number(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// The API version a Docker release speaks (its maximum).
#[must_use]
pub fn api_of_release(release: &str) -> Option<&'static str> {
    let want = release_number(release)?;
    DOCKER_API
        .iter()
        .rev()
        .find(|(r, _)| release_number(r).is_some_and(|r| r <= want))
        .filter(|_| want >= (19, 3))
        .map(|(_, a)| *a)
}

/// The minimum API a daemon of this release accepts unless told otherwise (DOMAIN.md §1.1):
/// 1.12 up to 24.0 on Linux, 1.24 from 25.0, 1.44 in 29.0–29.2, 1.40 from 29.3.
#[must_use]
pub fn default_min_api(release: &str) -> Option<&'static str> {
    let r = release_number(release)?;
    Some(if r < (25, 0) {
        "1.12"
    } else if r < (29, 0) {
        "1.24"
    } else if r < (29, 3) {
        "1.44"
    } else {
        "1.40"
    })
}

/// `1.44` → (1, 44), comparable.
#[must_use]
pub fn api(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The oldest Docker release whose client speaks at least this API version.
#[must_use]
pub fn first_release_with_api(min: &str) -> Option<&'static str> {
    let min = api(min)?;
    DOCKER_API
        .iter()
        .find(|(_, a)| api(a).is_some_and(|a| a >= min))
        .map(|(r, _)| *r)
}

/// The newest Docker release whose API is at most this version.
#[must_use]
pub fn last_release_with_api(max: &str) -> Option<&'static str> {
    let max = api(max)?;
    DOCKER_API
        .iter()
        .rev()
        .find(|(_, a)| api(a).is_some_and(|a| a <= max))
        .map(|(r, _)| *r)
}

#[allow(clippy::expect_used)] // constant patterns, covered by tests
static TOO_OLD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"client version ([0-9.]+) is too old\. Minimum supported API version is ([0-9.]+)")
        .expect("regex")
});
#[allow(clippy::expect_used)]
static TOO_NEW: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"client version ([0-9.]+) is too new\. Maximum supported API version is ([0-9.]+)")
        .expect("regex")
});

/// The signature's title, with the subject named when the evidence names it.
#[must_use]
pub fn title(base: &str, subject: &Subject) -> String {
    let what = subject
        .image
        .as_deref()
        .or(subject.registry.as_deref())
        .or(subject.endpoint.as_deref());
    match what {
        Some(w) => format!("{base} ({w})"),
        None if !subject.tags.is_empty() => format!("{base} (tags: {})", subject.tags.join(", ")),
        None => base.to_string(),
    }
}

/// Sentences specific to this evidence, to put before the class's general explanation.
#[must_use]
pub fn explain(class: Class, text: &str, ex: &Extracted, subject: &Subject) -> Vec<String> {
    let mut out = Vec::new();
    match class {
        Class::DockerApiSkew => {
            if let Some(c) = TOO_OLD.captures(text) {
                let (client, min) = (&c[1], &c[2]);
                let release = first_release_with_api(min).map_or_else(String::new, |r| format!(" Use docker:{r} or newer for the job's image (and its dind service), or lower the daemon's minimum."));
                out.push(format!(
                    "The client speaks API {client}; the daemon accepts {min} and newer.{release}"
                ));
            } else if let Some(c) = TOO_NEW.captures(text) {
                let (client, max) = (&c[1], &c[2]);
                let release = last_release_with_api(max).map_or_else(String::new, |r| format!(" Use a client of Docker {r} or older, or 29.3+ (which negotiates down), or upgrade the daemon."));
                out.push(format!(
                    "The client speaks API {client}; the daemon's newest is {max}.{release}"
                ));
            }
        }
        Class::RunnerTags if !subject.tags.is_empty() => {
            out.push(format!(
                "The job waits for an online runner that has all of these tags: {}.",
                subject.tags.join(", ")
            ));
        }
        Class::TokenRealmUnreachable => {
            let realm = ex.url.as_deref().filter(|_| ex.token_request);
            match (realm, ex.dialled.as_deref(), ex.registry.as_deref()) {
                (Some(url), Some(addr), Some(reg)) => out.push(format!(
                    "The token request went to {url} ({addr}), not to the registry {reg}."
                )),
                (Some(url), Some(addr), None) => {
                    out.push(format!("The token request went to {url} ({addr})."))
                }
                (None, Some(addr), _) => {
                    out.push(format!("The token service at {addr} did not answer."))
                }
                _ => {}
            }
        }
        Class::HttpVsHttps => {
            if let Some(reg) = &ex.registry {
                out.push(format!(
                    "Every node pulling from {reg} needs /etc/containerd/certs.d/{reg}/hosts.toml with server = \"http://{reg}\"."
                ));
            }
        }
        Class::Dns => {
            if let Some(name) = &ex.dialled {
                out.push(format!("The name that did not resolve: {name}."));
            }
        }
        Class::OtherNetwork => {
            let why = if text.contains("connection refused") {
                Some(
                    "refused: something answered with a reset (nothing listening, a DNAT to a closed port, or a REJECT)",
                )
            } else if text.contains("no route to host") {
                Some(
                    "no route to host: an ICMP unreachable/prohibited answer (a REJECT rule on a hop, or a dead next hop)",
                )
            } else if text.contains("timeout")
                || text.contains("timed out")
                || text.contains("deadline exceeded")
            {
                Some(
                    "timed out: packets were dropped silently (DROP policy, missing FORWARD accept, ip_forward=0, missing MASQUERADE)",
                )
            } else {
                None
            };
            if let (Some(why), Some(addr)) = (why, ex.dialled.as_deref().or(ex.url.as_deref())) {
                out.push(format!("The dial to {addr} was {why}."));
            }
        }
        Class::ImageNotFound => {
            if let Some(image) = &subject.image {
                out.push(format!("The registry has nothing under {image}."));
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The incident's skew names the first Docker release that works.
    #[test]
    fn docker_release_for_api() {
        assert_eq!(first_release_with_api("1.44"), Some("25.0"));
        assert_eq!(first_release_with_api("1.40"), Some("19.03"));
        assert_eq!(last_release_with_api("1.43"), Some("24.0"));
        assert_eq!(first_release_with_api("2.0"), None);
        assert_eq!(api_of_release("24.0.5"), Some("1.43"));
        assert_eq!(api_of_release("27.5"), Some("1.47"));
        assert_eq!(api_of_release("29.1.3"), Some("1.52"));
        assert_eq!(api_of_release("19.03.12"), Some("1.40"));
        assert_eq!(api_of_release("18.09"), None);
        assert_eq!(default_min_api("29.2.1"), Some("1.44"));
        assert_eq!(default_min_api("29.3.0"), Some("1.40"));
        assert_eq!(default_min_api("20.10.24"), Some("1.12"));
        let s = explain(
            Class::DockerApiSkew,
            "client version 1.43 is too old. Minimum supported API version is 1.44, please upgrade",
            &Extracted::default(),
            &Subject::default(),
        );
        assert!(s[0].contains("docker:25.0 or newer"), "{s:?}");
    }
}
