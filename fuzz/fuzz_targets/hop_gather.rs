//! Fuzz the hop gather reader (forwarding, routes, addresses, iptables/nft of a NAT hop) and the
//! port probe's result line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::check::hops;

fuzz_target!(|data: &str| {
    let _ = hops::parse_hop_gathered(data);
    let _ = hops::parse_probe(data);
    let mut table = hops::ProbeSet::new();
    let _ = table.add_output("k8s-n1", data);
});
