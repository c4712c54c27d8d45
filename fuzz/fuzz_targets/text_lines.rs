//! Fuzz the line cleaners every log line goes through (ANSI, escapes, timestamps, whitespace),
//! the generic record builder, and the redactor that every shown text passes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::parse::{self, text};
use pulldoctor::redact::Redactor;

fuzz_target!(|data: &str| {
    let _ = text::clean_line(data);
    let _ = text::strip_ansi(data);
    let _ = text::leading_timestamp(data);
    let _ = text::unescape(data);
    let _ = text::collapse_whitespace(data);
    let mut ctx = parse::InputContext::default();
    for (n, line) in data.lines().enumerate() {
        ctx.observe_header(line);
        let _ = parse::record(line, n as u64 + 1, &ctx);
    }
    let _ = Redactor::with_literals(vec!["s3cr3t-literal".to_string()]).redact(data);
});
