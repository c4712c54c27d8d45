//! Fuzz image reference parsing (from manifests, events, job logs and CI files).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::parse::image_ref::{self, ImageRef};

fuzz_target!(|data: &str| {
    if let Ok(r) = ImageRef::parse(data) {
        let _ = (
            r.name(),
            r.effective_tag(),
            r.host(),
            r.port(),
            r.to_string(),
        );
    }
    let (domain, rest) = image_ref::split_domain(data);
    if let Some(d) = domain {
        let _ = image_ref::split_host_port(d);
    }
    let _ = image_ref::split_name_tag_digest(rest);
    let _ = pulldoctor::parse::extract::image_domain(data);
    let _ = pulldoctor::check::api_skew::docker_image(data);
});
