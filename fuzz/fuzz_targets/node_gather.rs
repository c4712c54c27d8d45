//! Fuzz the node gather reader (containerd version, config, hosts.toml, resolution) and the
//! verdict drawn from what it read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::check::node_registry;

fuzz_target!(|data: &str| {
    if let Ok(facts) = node_registry::parse_gathered(data) {
        let _ = node_registry::evaluate(&facts, "registry.example.com:5050");
        let _ = node_registry::evaluate(&facts, &facts.registry);
    }
});
