//! Fuzz the `.gitlab-ci.yml` evaluator (YAML with anchors, `extends`, `!reference`, includes of
//! local files, `rules:if`, variable expansion).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulldoctor::parse::gitlab_ci::{self, ProjectContext, rules};
use std::collections::BTreeMap;

fuzz_target!(|data: &str| {
    let ctx = ProjectContext::default();
    // an include reads the same text again: includes, cycles and depth limits are exercised
    let read = |_: &str| Ok(data.to_string());
    let _ = gitlab_ci::evaluate(".gitlab-ci.yml", data, &read, &ctx);
    let mut vars = BTreeMap::new();
    vars.insert("CI_COMMIT_BRANCH".to_string(), "main".to_string());
    vars.insert("A".to_string(), "$A$A".to_string());
    let _ = rules::expand(data, &vars);
    let _ = rules::eval_if(data, &vars);
});
