//! Fuzz the `WWW-Authenticate` parser (a registry's answer) and the realm's host and port.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::parse::www_auth;

fuzz_target!(|data: &str| {
    if let Ok(challenges) = www_auth::parse(data) {
        for c in &challenges {
            let _ = (c.realm(), c.service(), c.scopes(), c.error(), c.token68());
            if let Some(realm) = c.realm() {
                let _ = www_auth::realm_host_port(realm);
            }
        }
    }
    let _ = www_auth::realm_host_port(data);
});
