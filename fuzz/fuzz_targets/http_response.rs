//! Fuzz what reads an HTTP answer: the response parser, then the registry's error body and
//! challenges, GitLab's pagination, the Docker daemon's `/version`, and a server certificate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::probe::{docker, gitlab, http, registry};

fuzz_target!(|data: &[u8]| {
    if let Some(resp) = http::parse_response(data) {
        let _ = resp.status_text();
        let _ = registry::challenges(&resp);
        let _ = registry::registry_errors(&resp.body);
        let _ = gitlab::next_page(&resp, "https://gitlab.example.com/api/v4/runners?page=1");
        let _ = docker::parse_version(&resp.body, "fuzz");
        let _ = docker::classify_answer(resp.status, &resp.body);
    }
    let _ = http::describe_cert(data);
});
