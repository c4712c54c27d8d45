//! Fuzz the JWT decoder (a token server's answer) and the base64 codec under it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::parse::jwt;

fuzz_target!(|data: &str| {
    if let Ok(token) = jwt::decode(data) {
        let _ = token.alg();
        let _ = token.grants("group/project", "pull");
        let _ = token.expired_at(1_700_000_000);
        let _ = token.not_yet_valid_at(i64::MIN);
        let _ = token.expired_at(i64::MAX);
    }
    if let Ok(bytes) = jwt::base64_decode(data) {
        let again = jwt::base64_encode(&bytes, true);
        assert!(jwt::base64_decode(&again).is_ok_and(|b| b == bytes));
    }
});
