//! Fuzz the journal line parser (logrus, klog, `journalctl -o json`, syslog prefixes) and the
//! `kubectl get events` row parser: both read text from the nodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::parse::{events, journal};

fuzz_target!(|data: &str| {
    for (n, line) in data.lines().enumerate() {
        let _ = journal::parse_line(line, n as u64 + 1);
        let _ = journal::logrus_fields(line);
        let _ = events::parse_row(line, n as u64 + 1);
    }
});
