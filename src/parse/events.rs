//! Kubernetes events as people paste them: `kubectl describe pod` Events rows and
//! `kubectl get events` table rows. The message column is what gets classified.

use super::{Record, RecordFormat};

/// Parse an event row; `None` for anything else.
///
/// Rows are columns separated by two or more spaces. `kubectl describe`:
/// `Warning  Failed  3m (x4 over 5m)  kubelet, k8s-n1  Failed to pull image "…": …` (the `From`
/// column names the node on older clusters). `kubectl get events [-A]`:
/// `[namespace]  5m  Warning  Failed  pod/api-7d9…  Failed to pull image "…": …`.
#[must_use]
pub fn parse_row(line: &str, line_no: u64) -> Option<Record> {
    let cols: Vec<&str> = line
        .trim()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let t = cols
        .iter()
        .position(|c| *c == "Normal" || *c == "Warning")?;
    let reason = *cols.get(t + 1)?;
    if !reason.chars().all(|c| c.is_ascii_alphabetic()) || t > 2 {
        return None;
    }
    let rest = &cols[t + 2..];
    let (time, from, msg) = if t == 0 {
        // describe: age, from, message
        if rest.len() < 3 {
            return None;
        }
        (Some(rest[0]), Some(rest[1]), rest[2..].join("  "))
    } else {
        // get events: ..., last seen, type, reason, object, message
        if rest.len() < 2 {
            return None;
        }
        (cols.get(t - 1).copied(), None, rest[1..].join("  "))
    };
    let host = from
        .and_then(|f| f.strip_prefix("kubelet, "))
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    // `3m (x4 over 5m)`: the event happened four times.
    let repeat = time
        .and_then(|a| a.split_once("(x"))
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    Some(Record {
        line: line_no,
        display: line.trim().to_string(),
        text: format!("{reason}: {msg}"),
        time: time.map(str::to_string),
        host,
        format: RecordFormat::Event,
        repeat,
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
        assert_eq!(rec.repeat, 4);
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

    /// `kubectl get events -A` rows (namespace first).
    #[test]
    fn get_events_all_namespaces() {
        let row =
            "gition   2m   Warning   Failed   pod/api-x   Failed to pull image \"a:1\": not found";
        let rec = parse_row(row, 1).unwrap();
        assert_eq!(rec.time.as_deref(), Some("2m"));
        assert_eq!(rec.text, "Failed: Failed to pull image \"a:1\": not found");
    }

    /// Other lines are not event rows.
    #[test]
    fn non_rows() {
        assert!(parse_row("Error response from daemon: unauthorized", 1).is_none());
        assert!(parse_row("  Type     Reason     Age   From     Message", 1).is_none());
    }
}
