//! Unified diffs of a planned change, the way `diff -u` shows them, so an edit is read before
//! it is made.

/// The unified diff turning `old` into `new`, with `path` in the headers and three lines of
/// context.
#[must_use]
pub fn unified(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_changed_line_with_context() {
        let d = unified("f.toml", "a = 1\nb = 2\nc = 3\n", "a = 1\nb = 5\nc = 3\n");
        assert!(
            d.starts_with("--- a/f.toml\n+++ b/f.toml\n@@ -1,3 +1,3 @@\n"),
            "{d}"
        );
        assert!(d.contains("\n-b = 2\n+b = 5\n"), "{d}");
    }
}
