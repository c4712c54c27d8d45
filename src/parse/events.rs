//! Kubernetes events as people paste them: `kubectl describe pod` Events rows and
//! `kubectl get events` table rows. The message column is what gets classified.

use super::{Record, RecordFormat};
use regex::Regex;
use std::sync::LazyLock;

/// `  Warning  Failed     3m (x4 over 5m)   kubelet, k8s-n1  Failed to pull image "…": …`
/// (describe; the `From` column may name the node) and
/// `5m   Warning   Failed   pod/api-7d9…   Failed to pull image "…": …` (get events).
static EVENT_ROW: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a constant pattern, covered by tests
    Regex::new(
        r"^\s*(?:(?P<age1>[0-9a-z<>()x ]+?)\s{2,})?(?P<type>Normal|Warning)\s+(?P<reason>[A-Za-z]+)\s{2,}(?P<mid>.*?)\s{2,}(?P<msg>\S.*)$",
    )
    .expect("event row regex")
});

/// Parse an event row; `None` for anything else.
#[must_use]
pub fn parse_row(line: &str, line_no: u64) -> Option<Record> {
    let c = EVENT_ROW.captures(line)?;
    let reason = &c["reason"];
    let mid = c.name("mid").map_or("", |m| m.as_str());
    // describe: `<age>  <from>`, where from is `kubelet` or `kubelet, node`, or
    // `default-scheduler`; get events: `<object>` (pod/…).
    let host = mid
        .split_once("kubelet, ")
        .map(|(_, node)| node.split_whitespace().next().unwrap_or("").to_string())
        .filter(|n| !n.is_empty());
    let age = c
        .name("age1")
        .map(|m| m.as_str().trim().to_string())
        .or_else(|| mid.split("  ").next().map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty());
    let msg = &c["msg"];
    Some(Record {
        line: line_no,
        display: line.trim().to_string(),
        text: format!("{reason}: {msg}"),
        time: age,
        host,
        format: RecordFormat::Event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Describe rows keep the node named by the old `kubelet, node` source column.
    #[test]
    fn describe_rows() {
        let row = r#"  Warning  Failed     3m (x4 over 5m)   kubelet, k8s-n1  Failed to pull image "172.100.100.9:5050/root/gition/api:latest": rpc error: code = NotFound desc = not found"#;
        let rec = parse_row(row, 9).unwrap();
        assert_eq!(rec.host.as_deref(), Some("k8s-n1"));
        assert_eq!(rec.time.as_deref(), Some("3m (x4 over 5m)"));
        assert!(rec.text.starts_with("Failed: Failed to pull image"));
        let row = "  Normal   BackOff    2m (x6 over 4m)   kubelet            Back-off pulling image \"x\"";
        let rec = parse_row(row, 1).unwrap();
        assert_eq!(rec.host, None);
        assert!(rec.text.starts_with("BackOff: Back-off pulling image"));
    }

    /// `kubectl get events` rows.
    #[test]
    fn get_events_rows() {
        let row = r#"5m          Warning   Failed    pod/api-7d9f8b-x2v   Failed to pull image "a/b:c": failed to resolve reference "a/b:c": a/b:c: not found"#;
        let rec = parse_row(row, 2).unwrap();
        assert_eq!(rec.time.as_deref(), Some("5m"));
        assert!(rec.text.contains("a/b:c: not found"));
    }

    /// Other lines are not event rows.
    #[test]
    fn non_rows() {
        assert!(parse_row("Error response from daemon: unauthorized", 1).is_none());
        assert!(parse_row("  Type     Reason     Age   From     Message", 1).is_none());
    }
}
