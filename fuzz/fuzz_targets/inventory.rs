//! Fuzz the inventory (`pulldoctor.toml`) reader and the SSH client configuration reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::inventory::Inventory;

fuzz_target!(|data: &str| {
    let _ = Inventory::parse(data, "pulldoctor.toml");
    if let Ok(cfg) = pulldoctor::ssh::config::SshConfig::parse(data) {
        let _ = cfg.host("k8s-n1");
    }
});
