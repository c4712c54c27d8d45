//! Fuzz the containerd `config.toml` and `hosts.toml` readers (files read from the nodes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::parse::containerd;

fuzz_target!(|data: &str| {
    if let Ok(cfg) = containerd::parse_config("/etc/containerd/config.toml", data) {
        let _ = cfg.file_version();
    }
    if let Ok(hosts) =
        containerd::parse_hosts_toml("/etc/containerd/certs.d/r:5050/hosts.toml", data)
    {
        let _ = format!("{hosts:?}");
    }
});
