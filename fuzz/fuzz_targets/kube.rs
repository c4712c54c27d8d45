//! Fuzz the Kubernetes object reader (`kubectl get -o json`, manifests in YAML) and the masking of
//! Secret data in shown manifests.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::parse::kube;
use pulldoctor::redact::Redactor;

fuzz_target!(|data: &str| {
    if let Ok(objects) = kube::parse_objects(data, "fuzz.yaml") {
        let _ = pulldoctor::check::cluster::failing_pod_rows(&objects);
    }
    let _ = kube::mask_secret_data(data, &Redactor::default());
});
