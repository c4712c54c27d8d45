//! Text clean-up shared by every parser: terminal escapes, GitLab job-log markers and timestamps,
//! logrus/Go string unescaping.

/// Remove ANSI escape sequences, GitLab `section_start:`/`section_end:` markers, the runner's
/// per-line timestamp prefix, carriage returns and trailing whitespace.
#[must_use]
pub fn clean_line(raw: &str) -> String {
    let mut out = strip_ansi(raw);
    // GitLab job logs: `section_start:1700000000:step_script\r\e[0K` (the escape is gone by now).
    while let Some(pos) = out
        .find("section_start:")
        .or_else(|| out.find("section_end:"))
    {
        let end = out[pos..]
            .find('\r')
            .map_or_else(|| marker_end(&out[pos..]), |r| r + 1);
        out.replace_range(pos..pos + end, "");
    }
    // A carriage return inside a line means the terminal overwrote it: keep what was written last.
    out.truncate(out.trim_end().len());
    if let Some(pos) = out.rfind('\r') {
        out.replace_range(..=pos, "");
    }
    let trimmed = out.trim_end();
    strip_runner_timestamp(trimmed).to_string()
}

/// The end of a `section_start:TS:name[opts]` marker when no `\r` follows it.
fn marker_end(s: &str) -> usize {
    s.find(|c: char| c.is_whitespace()).unwrap_or(s.len())
}

/// Remove CSI (`ESC [ … final`) and OSC (`ESC ] … BEL`) sequences and lone escapes.
#[must_use]
pub fn strip_ansi(s: &str) -> String {
    if !s.contains('\u{1b}') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('[') => {
                chars.next();
                // parameters and intermediates, then one final byte in @..~
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {
                chars.next();
            }
        }
    }
    out
}

/// GitLab Runner 17+ can prefix each job-log line with `2024-01-15T10:00:00.123456Z 00O ` (time,
/// stream id, `O`/`E` for stdout/stderr, optional `+` for a continued line).
fn strip_runner_timestamp(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() < 25 || !looks_like_rfc3339(b) {
        return s;
    }
    let Some(sp) = s.find(' ') else { return s };
    let rest = &s[sp + 1..];
    let rb = rest.as_bytes();
    if rb.len() >= 3
        && rb[0].is_ascii_hexdigit()
        && rb[1].is_ascii_hexdigit()
        && matches!(rb[2], b'O' | b'E')
    {
        let mut i = 3;
        if rb.get(i) == Some(&b'+') {
            i += 1;
        }
        if rb.get(i) == Some(&b' ') {
            return &rest[i + 1..];
        }
        if i == rb.len() {
            return "";
        }
    }
    s
}

fn looks_like_rfc3339(b: &[u8]) -> bool {
    b.len() >= 19
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
}

/// A timestamp at the start of a plain line (RFC 3339 / ISO, or `YYYY/MM/DD HH:MM:SS`), if any.
#[must_use]
pub fn leading_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() >= 19
        && b[..4].iter().all(u8::is_ascii_digit)
        && matches!(b[4], b'-' | b'/')
        && matches!(b[10], b'T' | b' ')
        && b[13] == b':'
    {
        let end = s.find([' ', '\t']).filter(|&e| e > 10).unwrap_or(19);
        let end = if b[10] == b' ' { 19 } else { end };
        return Some(s[..end].to_string());
    }
    None
}

/// Undo Go/logrus string quoting inside a value: `\"` → `"`, `\\` → `\`, `\n`/`\t` → space.
#[must_use]
pub fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 't' | 'r') => out.push(' '),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Collapse runs of whitespace (including newlines) into single spaces.
#[must_use]
pub fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitLab job-log lines lose colours, section markers and the runner timestamp prefix.
    #[test]
    fn cleans_gitlab_job_log_lines() {
        let raw = "\u{1b}[0Ksection_start:1700000000:step_script\r\u{1b}[0K\u{1b}[0K\u{1b}[36;1mExecuting \"step_script\" stage of the job script\u{1b}[0;m";
        assert_eq!(
            clean_line(raw),
            "Executing \"step_script\" stage of the job script"
        );
        let raw = "2024-01-15T10:00:00.123456Z 01E Error response from daemon: client version 1.43 is too old";
        assert_eq!(
            clean_line(raw),
            "Error response from daemon: client version 1.43 is too old"
        );
        let raw = "2024-01-15T10:00:00.123456Z 01O+ continued";
        assert_eq!(clean_line(raw), "continued");
        assert_eq!(
            clean_line("\u{1b}[31;1mERROR: Job failed: exit code 1\u{1b}[0;m\r\n"),
            "ERROR: Job failed: exit code 1"
        );
    }

    /// A progress line overwritten with `\r` keeps only its last state.
    #[test]
    fn carriage_return_keeps_last_write() {
        assert_eq!(clean_line("resolving 10%\rresolving 50%\rdone"), "done");
    }

    /// Escaped quotes inside logrus values come back as quotes.
    #[test]
    fn unescapes_logrus_values() {
        assert_eq!(
            unescape(r#"Head \"https://x/v2/\": boom"#),
            r#"Head "https://x/v2/": boom"#
        );
        assert_eq!(unescape(r"trailing \"), r"trailing \");
    }

    /// Timestamps at the start of plain lines are recognised in both common shapes.
    #[test]
    fn leading_timestamps() {
        assert_eq!(
            leading_timestamp("2024-03-01T10:00:00.123Z msg").as_deref(),
            Some("2024-03-01T10:00:00.123Z")
        );
        assert_eq!(
            leading_timestamp("2024/03/01 10:00:00 msg").as_deref(),
            Some("2024/03/01 10:00:00")
        );
        assert_eq!(leading_timestamp("hello"), None);
    }
}
