//! GitLab's "This job is stuck" banner, in every wording GitLab has shipped (DOMAIN.md §2.4),
//! with the job's tags that follow it. People paste it from the job page, so line breaks and
//! indentation fall anywhere: whitespace is collapsed before matching.

use super::text::collapse_whitespace;
use serde::Serialize;

/// Which problem the banner names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StuckReason {
    /// The job has tags: no online runner has all of them (or none for a protected branch).
    Tags,
    /// The project has runners but none is online.
    NoRunnersOnline,
    /// No active runner can run the job.
    NoActiveRunners,
}

/// A parsed banner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StuckBanner {
    /// The problem named.
    pub reason: StuckReason,
    /// The job's tags listed after the banner (empty when none were pasted).
    pub tags: Vec<String>,
}

/// Words that end the tag list: the banner's own links and the job page around it.
const TAG_LIST_END: [&str; 6] = [
    "Go to project",
    "CI settings",
    "Learn more",
    "Job ",
    "Duration",
    "Runner",
];

/// Parse a banner from the text starting at "This job is stuck" (the rest of the paste may
/// follow; only the banner's paragraph is read). `None` if the text is not a banner.
#[must_use]
pub fn parse_stuck(text: &str) -> Option<StuckBanner> {
    // The banner and its tag badges end at a blank line.
    let paragraph: String = text.split("\n\n").next().unwrap_or(text).to_string();
    let flat = collapse_whitespace(&paragraph);
    let start = flat.find("This job is stuck")?;
    let flat = &flat[start..];
    let lower = flat.to_ascii_lowercase();
    let reason = if lower.contains("tags") {
        StuckReason::Tags
    } else if lower.contains("runners online assigned") || lower.contains("any runners online") {
        StuckReason::NoRunnersOnline
    } else {
        StuckReason::NoActiveRunners
    };
    let mut tags = Vec::new();
    if reason == StuckReason::Tags {
        // Tags follow the last colon of the sentence that names them.
        let after = lower
            .rfind("tags:")
            .map(|i| i + 5)
            .or_else(|| lower.rfind("assigned to them:").map(|i| i + 17));
        if let Some(after) = after {
            let mut rest = &flat[after..];
            for end in TAG_LIST_END {
                if let Some(i) = rest.find(end) {
                    rest = &rest[..i];
                }
            }
            tags = rest
                .split(|c: char| c == ',' || c.is_whitespace())
                .map(|t| t.trim_matches(|c: char| c == '-' || c == '.' || c == '•'))
                .filter(|t| !t.is_empty())
                .take(50)
                .map(str::to_string)
                .collect();
        }
    }
    Some(StuckBanner { reason, tags })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The current banner, pasted with its tag badges on their own lines.
    #[test]
    fn current_banner_with_badges() {
        let text = "This job is stuck because of one of the following problems. There are no active runners online, no runners for the\n      protected branch\n    , or no runners that match all of the job's tags:\nmz-win-vm\nmsi-gition\nGo to project CI settings";
        let b = parse_stuck(text).unwrap();
        assert_eq!(b.reason, StuckReason::Tags);
        assert_eq!(b.tags, ["mz-win-vm", "msi-gition"]);
    }

    /// The incident's wording (a list with dashes, tags comma-separated).
    #[test]
    fn incident_banner() {
        let text = "This job is stuck because of one of the following problems: - No runners for the protected branch - No runners that match all of the job's tags: mz-win-vm, msi-gition";
        assert_eq!(parse_stuck(text).unwrap().tags, ["mz-win-vm", "msi-gition"]);
    }

    /// The untagged variants and the oldest wording.
    #[test]
    fn other_variants() {
        let b = parse_stuck(
            "This job is stuck because the project doesn't have any runners online assigned to it.",
        )
        .unwrap();
        assert_eq!(b.reason, StuckReason::NoRunnersOnline);
        let b = parse_stuck(
            "This job is stuck because you don't have any active runners that can run this job.",
        )
        .unwrap();
        assert_eq!(b.reason, StuckReason::NoActiveRunners);
        let b = parse_stuck("This job is stuck, because you don't have any active runners online with any of these tags assigned to them: docker linux").unwrap_or_else(|| panic!("old wording"));
        assert_eq!(b.tags, ["docker", "linux"]);
        assert!(parse_stuck("This job is pending").is_none());
    }
}
