//! Edits of single lines in a text file, everything else kept byte for byte (comments, quoting,
//! indentation, line endings): how pulldoctor changes YAML and Ruby it did not write, using the
//! line numbers its parsers record instead of serialising the file again.

use super::FixStep;
use super::apply::sha256_hex;
use super::diff::unified;

/// One line to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineEdit {
    /// 1-based line number.
    pub line: u64,
    /// The line as the plan read it (without its line ending).
    pub old: String,
    /// What replaces it (`None`: the line goes, with its line ending).
    pub new: Option<String>,
}

/// `text` with `edits` made. Refused when a line is not what the edit expects (the file changed,
/// or two edits disagree about a line).
///
/// # Errors
/// The line that differs, or is missing.
pub fn apply_line_edits(text: &str, edits: &[LineEdit]) -> Result<String, String> {
    let mut lines: Vec<(&str, &str)> = text
        .split_inclusive('\n')
        .map(|l| {
            let body = l.strip_suffix('\n').unwrap_or(l);
            let body = body.strip_suffix('\r').unwrap_or(body);
            (body, &l[body.len()..])
        })
        .collect();
    let mut replaced: Vec<Option<Option<String>>> = vec![None; lines.len()];
    for e in edits {
        let i = usize::try_from(e.line)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .filter(|i| *i < lines.len())
            .ok_or_else(|| format!("line {} is past the end of the file", e.line))?;
        if lines[i].0 != e.old {
            return Err(format!(
                "line {} is `{}`, not `{}` as planned",
                e.line, lines[i].0, e.old
            ));
        }
        match &replaced[i] {
            Some(other) if *other != e.new => {
                return Err(format!("two different edits of line {}", e.line));
            }
            _ => replaced[i] = Some(e.new.clone()),
        }
    }
    let mut out = String::with_capacity(text.len());
    for (i, (body, ending)) in lines.drain(..).enumerate() {
        match &replaced[i] {
            None => {
                out.push_str(body);
                out.push_str(ending);
            }
            Some(Some(new)) => {
                out.push_str(new);
                out.push_str(ending);
            }
            Some(None) => {}
        }
    }
    Ok(out)
}

/// The text of 1-based line `n` (without its ending).
#[must_use]
pub fn line_at(text: &str, n: u64) -> Option<&str> {
    let i = usize::try_from(n).ok()?.checked_sub(1)?;
    text.lines().nth(i)
}

/// The step that makes `edits` on the local file `path` whose text is `old`, with its diff.
///
/// # Errors
/// An edit does not fit the text.
pub fn local_edit_step(path: &str, old: &str, edits: &[LineEdit]) -> Result<FixStep, String> {
    let new = apply_line_edits(old, edits).map_err(|e| format!("{path}: {e}"))?;
    Ok(FixStep::EditLocalFile {
        path: path.to_string(),
        diff: unified(path, old, &new),
        content: new,
        before: sha256_hex(old.as_bytes()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_keep_every_other_byte() {
        let text = "a: 1 # one\r\nb:\n  - x\n  - y\nc: 3";
        let out = apply_line_edits(
            text,
            &[
                LineEdit {
                    line: 1,
                    old: "a: 1 # one".into(),
                    new: Some("a: 2 # one".into()),
                },
                LineEdit {
                    line: 3,
                    old: "  - x".into(),
                    new: None,
                },
                LineEdit {
                    line: 5,
                    old: "c: 3".into(),
                    new: Some("c: 4".into()),
                },
            ],
        )
        .unwrap();
        assert_eq!(out, "a: 2 # one\r\nb:\n  - y\nc: 4");
    }

    #[test]
    fn a_line_that_changed_is_refused() {
        let e = apply_line_edits(
            "a: 1\n",
            &[LineEdit {
                line: 1,
                old: "a: 0".into(),
                new: Some("a: 2".into()),
            }],
        )
        .unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        assert!(
            apply_line_edits(
                "a\n",
                &[LineEdit {
                    line: 9,
                    old: "a".into(),
                    new: None
                }]
            )
            .is_err()
        );
    }
}
