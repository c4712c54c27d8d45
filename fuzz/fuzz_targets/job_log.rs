//! Fuzz what reads a CI job log: the failure classifier's scan (with the shipped signatures),
//! the field extractor, the error-chain splitter and the "job is stuck" banner.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::check::catalog::Catalog;
use pulldoctor::check::classify::Classifier;
use pulldoctor::check::logs;
use pulldoctor::parse::{banner, extract};
use pulldoctor::redact::Redactor;
use std::sync::LazyLock;

#[allow(clippy::expect_used)]
static CLASSIFIER: LazyLock<Classifier> = LazyLock::new(|| {
    Classifier::new(Catalog::embedded().expect("embedded catalog")).expect("classifier")
});

fuzz_target!(|data: &[u8]| {
    let outcome = logs::scan_bytes(&CLASSIFIER, data, "fuzz.log");
    let redactor = Redactor::default();
    let _ = outcome.findings(&CLASSIFIER, &redactor);
    let _ = outcome.unclassified(&redactor);
    if let Ok(text) = std::str::from_utf8(data) {
        let found = extract::extract(text);
        let _ = extract::error_chain(text);
        let _ = extract::image_domain(text);
        let _ = found;
        let _ = banner::parse_stuck(text);
        let _ = CLASSIFIER.classify(text);
    }
});
