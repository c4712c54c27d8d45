//! Fuzz the `--replay` bundle reader and the fix audit log reader (`runbook --audit`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::probe::bundle::Bundle;

fuzz_target!(|data: &str| {
    if let Ok(b) = Bundle::from_json(data) {
        let _ = b.input_names();
    }
    let _ = pulldoctor::fix::audit::read_since(data, "2026-11-27T10:00:00Z");
});
