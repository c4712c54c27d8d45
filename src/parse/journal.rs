//! Journal lines: logrus text (containerd), klog (kubelet), `journalctl -o json`, and the syslog
//! prefixes `journalctl` prints (`short`, `short-iso`, `short-precise`).

use super::text::unescape;
use super::{Record, RecordFormat};
use regex::Regex;
use std::sync::LazyLock;

/// `Mar 01 10:00:00 k8s-n1 containerd[1234]: ` / `2024-03-01T10:00:00+0000 k8s-n1 kubelet[9]: `
static SYSLOG_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a constant pattern, covered by tests
    Regex::new(
        r"^(?P<time>(?:[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8}(?:\.[0-9]+)?)|(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(?:\.[0-9]+)?(?:Z|[+-][0-9:]{4,5})?)) (?P<host>[^ ]+) (?P<prog>[^ \[:]+)(?:\[[0-9]+\])?: ",
    )
    .expect("syslog prefix regex")
});

/// `E0301 10:00:00.123456    1234 remote_image.go:180] message`
static KLOG_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a constant pattern, covered by tests
    Regex::new(
        r"^(?P<sev>[IWEF])(?P<md>[0-9]{4}) (?P<time>[0-9:]{8}\.[0-9]+) +[0-9]+ (?P<file>[^\]]+)\] ",
    )
    .expect("klog header regex")
});

/// Parse a journal line in any of the shapes above; `None` if it is none of them.
#[must_use]
pub fn parse_line(line: &str, line_no: u64) -> Option<Record> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('{')
        && let Some(rec) = parse_json(trimmed, line_no, line)
    {
        return Some(rec);
    }
    let (time, host, rest) = match SYSLOG_PREFIX.captures(trimmed) {
        Some(c) => (
            c.name("time").map(|m| m.as_str().to_string()),
            c.name("host").map(|m| m.as_str().to_string()),
            c.get(0).map_or("", |m| &trimmed[m.end()..]),
        ),
        None => (None, None, trimmed),
    };
    let mut rec = parse_message(rest, line_no, line)?;
    if rec.time.is_none() {
        rec.time = time;
    }
    rec.host = rec.host.or(host);
    Some(rec)
}

/// Parse the message part of a journal entry (after any syslog prefix): logrus or klog.
fn parse_message(msg: &str, line_no: u64, display: &str) -> Option<Record> {
    if let Some(rec) = parse_logrus(msg, line_no, display) {
        return Some(rec);
    }
    let c = KLOG_HEADER.captures(msg)?;
    let rest = c.get(0).map_or("", |m| &msg[m.end()..]);
    Some(Record {
        line: line_no,
        display: display.to_string(),
        text: unescape(rest),
        time: Some(format!("{} {}", &c["md"], &c["time"])),
        host: None,
        format: RecordFormat::Klog,
        repeat: 1,
    })
}

/// logrus text format: `time="…" level=error msg="…" error="…" host=…`, possibly behind a
/// prefix another tool added (`[timestamp] `, `user: warning: `). Unquoted values may contain
/// spaces (`msg=fetch failed error=…`): a value runs until the next ` key=`.
fn parse_logrus(msg: &str, line_no: u64, display: &str) -> Option<Record> {
    let start = ["time=", "level="]
        .iter()
        .filter_map(|k| field_start(msg, k))
        .min()?;
    if !msg[start..].contains("msg=") {
        return None;
    }
    let mut time = None;
    let mut text = String::with_capacity(msg.len());
    text.push_str(msg[..start].trim_end());
    for (key, value) in logrus_fields(&msg[start..]) {
        match key {
            "time" => time = Some(value.to_string()),
            "level" => {}
            _ => {
                if !text.is_empty() {
                    text.push(' ');
                }
                if key != "msg" && !key.is_empty() {
                    text.push_str(key);
                    text.push('=');
                }
                text.push_str(&unescape(value));
            }
        }
    }
    Some(Record {
        line: line_no,
        display: display.to_string(),
        text,
        time,
        host: None,
        format: RecordFormat::Logrus,
        repeat: 1,
    })
}

/// Where `key` starts as a field: at the start or after a space.
fn field_start(s: &str, key: &str) -> Option<usize> {
    s.match_indices(key)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || s.as_bytes()[i - 1] == b' ')
}

/// Can a quoted value end just before `b[i..]`: at the end of the line, or before ` key=`?
fn closes_value(b: &[u8], i: usize) -> bool {
    i >= b.len() || (b[i] == b' ' && (i + 1 >= b.len() || key_follows(b, i + 1)))
}

/// Is `b[i..]` the start of a ` key=` (identifier characters, then `=`)?
fn key_follows(b: &[u8], i: usize) -> bool {
    let mut j = i;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'_' | b'.' | b'-')) {
        j += 1;
    }
    j > i && b.get(j) == Some(&b'=')
}

/// Split logrus `key=value key="quoted \"value\""` pairs. Values keep their escapes. Text
/// that is no field (what is left when a paste lost its quoting) comes back under the key `""`,
/// so nothing a line says is dropped.
pub fn logrus_fields(s: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let key_start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            if key_start < b.len() {
                out.push(("", s[key_start..].trim_end()));
            }
            break;
        }
        let key = &s[key_start..i];
        i += 1;
        let (value, next) = if b.get(i) == Some(&b'"') {
            let start = i + 1;
            let mut j = start;
            // Markdown eats backslashes, so pasted lines often carry `msg="Pull "x" failed"`: a
            // quote closes the value only at the end or before the next ` key=`.
            while j < b.len() && !(b[j] == b'"' && closes_value(b, j + 1)) {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let end = j.min(b.len());
            (&s[start..end], end + 1)
        } else {
            // unquoted: up to the next ` key=` (values such as `fetch failed` contain spaces)
            let start = i;
            let mut j = start;
            while j < b.len() && !(b[j] == b' ' && key_follows(b, j + 1)) {
                j += 1;
            }
            (s[start..j].trim_end(), j)
        };
        out.push((key, value));
        i = next;
    }
    out
}

/// `journalctl -o json`: one object per line; `MESSAGE` is a string, or an array of bytes when
/// the message was not valid UTF-8.
fn parse_json(line: &str, line_no: u64, display: &str) -> Option<Record> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let obj = v.as_object()?;
    let message = match obj.get("MESSAGE")? {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(bytes) => {
            let bytes: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => return None,
    };
    let host = obj
        .get("_HOSTNAME")
        .and_then(|h| h.as_str())
        .map(str::to_string);
    let time = obj
        .get("__REALTIME_TIMESTAMP")
        .and_then(|t| t.as_str())
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    let message = super::text::clean_line(&message);
    let mut rec = parse_message(&message, line_no, display).unwrap_or_else(|| Record {
        line: line_no,
        display: display.to_string(),
        text: message.clone(),
        time: None,
        host: None,
        format: RecordFormat::JournalJson,
        repeat: 1,
    });
    rec.display = message;
    rec.format = RecordFormat::JournalJson;
    rec.host = host;
    rec.time = rec.time.or(time);
    Some(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A containerd logrus line behind a `journalctl` short prefix keeps time, host and the
    /// unescaped error chain.
    #[test]
    fn logrus_behind_syslog_prefix() {
        let line = r#"Mar 01 10:00:00 k8s-n1 containerd[812]: time="2024-03-01T10:00:00.123456789Z" level=error msg="PullImage \"10.0.0.9:5050/root/gition/backend:latest\" failed" error="failed to pull and unpack image \"10.0.0.9:5050/root/gition/backend:latest\": failed to resolve reference \"10.0.0.9:5050/root/gition/backend:latest\": failed to do request: Head \"https://10.0.0.9:5050/v2/root/gition/backend/manifests/latest\": http: server gave HTTP response to HTTPS client""#;
        let rec = parse_line(line, 7).unwrap();
        assert_eq!(rec.format, RecordFormat::Logrus);
        assert_eq!(rec.host.as_deref(), Some("k8s-n1"));
        assert_eq!(rec.time.as_deref(), Some("2024-03-01T10:00:00.123456789Z"));
        assert!(rec.text.starts_with(r#"PullImage "10.0.0.9:5050/root/gition/backend:latest" failed error=failed to pull"#), "{}", rec.text);
        assert!(rec.text.contains(r#"Head "https://10.0.0.9:5050/v2/"#));
    }

    /// `journalctl -o json` lines, with a string or a byte-array MESSAGE.
    #[test]
    fn journal_json() {
        let line = r#"{"__REALTIME_TIMESTAMP":"1709287200123456","_HOSTNAME":"k8s-n2","SYSLOG_IDENTIFIER":"containerd","MESSAGE":"time=\"2024-03-01T10:00:00Z\" level=info msg=\"trying next host\" error=\"failed to do request\" host=\"x\""}"#;
        let rec = parse_line(line, 1).unwrap();
        assert_eq!(rec.format, RecordFormat::JournalJson);
        assert_eq!(rec.host.as_deref(), Some("k8s-n2"));
        assert_eq!(rec.time.as_deref(), Some("2024-03-01T10:00:00Z"));
        assert!(
            rec.text
                .contains("trying next host error=failed to do request")
        );
        let bytes = r#"{"_HOSTNAME":"n","MESSAGE":[104,105,255]}"#;
        let rec = parse_line(bytes, 1).unwrap();
        assert_eq!(rec.text, "hi\u{fffd}");
    }

    /// A truncated JSON journal line is not a JSON record; what can be read of it still is.
    #[test]
    fn truncated_json_is_not_json() {
        let rec = parse_line(r#"{"MESSAGE":"time=\"x\" level=error msg=\"Pull"#, 1);
        assert!(rec.is_none_or(|r| r.format != RecordFormat::JournalJson));
    }

    /// kubelet klog lines, structured form.
    #[test]
    fn klog_line() {
        let line = r#"E0301 10:00:00.123456    1234 remote_image.go:180] "PullImage from image service failed" err="rpc error: code = NotFound desc = failed to pull and unpack image \"x:1\": x:1: not found" image="x:1""#;
        let rec = parse_line(line, 3).unwrap();
        assert_eq!(rec.format, RecordFormat::Klog);
        assert_eq!(rec.time.as_deref(), Some("0301 10:00:00.123456"));
        assert!(rec.text.contains(r#"image "x:1": x:1: not found"#));
        let prefixed = format!("Mar 01 10:00:00 k8s-n3 kubelet[99]: {line}");
        assert_eq!(
            parse_line(&prefixed, 3).unwrap().host.as_deref(),
            Some("k8s-n3")
        );
    }

    /// Unquoted values with spaces, and a prefix another tool put before the fields.
    #[test]
    fn logrus_unquoted_and_prefixed() {
        let line = "user: warning: [2025-06-10T01:47:52Z]: level=info msg=fetch failed error=failed to do request: lookup ghcr.io on 8.8.8.8:53: i/o timeout host=ghcr.io";
        let rec = parse_line(line, 1).unwrap();
        assert_eq!(rec.format, RecordFormat::Logrus);
        assert!(rec.text.starts_with("user: warning: [2025-06-10T01:47:52Z]: fetch failed error=failed to do request: lookup ghcr.io"), "{}", rec.text);
        assert!(rec.text.ends_with("host=ghcr.io"), "{}", rec.text);
    }

    /// A paste that lost its backslashes (`msg="PullImage "x" failed"`) keeps every word: a quote
    /// inside a value does not end it, and what cannot be split is kept as text.
    #[test]
    fn logrus_with_quotes_a_paste_unescaped() {
        let line = r#"time="2020-03-12T23:53:50+01:00" level=error msg="PullImage "redis:alpine" failed" error="failed to resolve image "docker.io/library/redis:alpine": 429 Too Many Requests""#;
        let rec = parse_line(line, 1).unwrap();
        assert_eq!(
            rec.text,
            r#"PullImage "redis:alpine" failed error=failed to resolve image "docker.io/library/redis:alpine": 429 Too Many Requests"#
        );
        let broken = r#"level=error msg="Pull x" what "is this": EOF"#;
        let rec = parse_line(broken, 1).unwrap();
        assert!(rec.text.ends_with(r#"what "is this": EOF"#), "{}", rec.text);
    }

    /// Free text is not a journal line.
    #[test]
    fn plain_text_is_not_journal() {
        assert!(parse_line("Error response from daemon: manifest unknown", 1).is_none());
    }
}
