//! Fuzz the pull-secret reader (`.dockerconfigjson`, legacy `.dockercfg`, a Kubernetes Secret) and
//! the registry matching of its entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::parse::dockercfg;

fuzz_target!(|data: &str| {
    if let Ok(cfg) = dockercfg::parse_secret(data) {
        let _ = cfg.matching("registry.example.com:5050/group/app:1");
        let _ = cfg.matching("busybox");
        let _ = format!("{cfg:?}");
    }
});
