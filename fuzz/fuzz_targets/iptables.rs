//! Fuzz the `iptables-save` and `nft list ruleset` readers (output read from the hops).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::parse::iptables::{self, Backend};

fuzz_target!(|data: &str| {
    for backend in [Backend::Legacy, Backend::IptablesNft] {
        if let Ok(rules) = iptables::parse_save(data, "iptables-save", backend) {
            let _ = rules.rules().count();
        }
    }
    if let Ok(rules) = iptables::parse_nft(data, "nft list ruleset") {
        let _ = rules.rules().count();
    }
    let _ = iptables::Net::parse(data);
});
