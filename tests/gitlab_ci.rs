//! The `.gitlab-ci.yml` model against the fixtures' `merged_yaml`-equivalent expectations, and
//! against hostile YAML (alias bomb, 50 MB file, `extends` cycle) within a second.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pulldoctor::parse::gitlab_ci::{self, CiConfig, Origin, ProjectContext, Tri};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gitlab_ci")
        .join(name)
}

fn ctx() -> ProjectContext {
    ProjectContext {
        project_path: "Root/Gition".into(),
        registry: Some("172.100.100.9:5050".into()),
        default_branch: "main".into(),
        default_branch_protected: true,
    }
}

fn load(name: &str) -> Result<CiConfig, gitlab_ci::CiError> {
    let dir = fixture_dir(name);
    let text = std::fs::read_to_string(dir.join(".gitlab-ci.yml")).unwrap();
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string());
    gitlab_ci::evaluate(".gitlab-ci.yml", &text, &read, &ctx())
}

/// Every fixture's jobs have exactly the tags, image and services its `expected.json` says.
#[test]
fn fixtures_match_merged_yaml_expectations() {
    for name in ["incident", "monorepo", "legacy"] {
        let cfg = load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture_dir(name).join("expected.json")).unwrap(),
        )
        .unwrap();
        let expected = expected.as_object().unwrap();
        let names: Vec<&str> = cfg.jobs.iter().map(|j| j.name.as_str()).collect();
        let mut want: Vec<&str> = expected.keys().map(String::as_str).collect();
        let mut got = names.clone();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "{name}: visible jobs");
        for job in &cfg.jobs {
            let e = &expected[&job.name];
            let tags: Vec<String> = serde_json::from_value(e["tags"].clone()).unwrap();
            assert_eq!(job.tag_values(), tags, "{name}/{}: tags", job.name);
            let image = e["image"].as_str().map(str::to_string);
            assert_eq!(
                job.image.as_ref().map(|i| i.name.clone()),
                image,
                "{name}/{}: image",
                job.name
            );
            let services: Vec<String> = serde_json::from_value(e["services"].clone()).unwrap();
            let got: Vec<String> = job.services.iter().map(|s| s.name.clone()).collect();
            assert_eq!(got, services, "{name}/{}: services", job.name);
        }
    }
}

/// The incident: tags come from the hidden job via extends, located on their own lines; the
/// job runs on the (protected) default branch only; predefined variables are expanded with the
/// project path lower-cased.
#[test]
fn incident_provenance_and_refs() {
    let cfg = load("incident").unwrap();
    let job = cfg.job("build-backend").unwrap();
    assert_eq!(
        job.tags_origin,
        Origin::Extends {
            from: ".docker-build".into()
        }
    );
    assert_eq!(job.tags[0].loc.line, 11);
    assert_eq!(job.tags[0].loc.file, ".gitlab-ci.yml");
    assert_eq!(job.extends, [".docker-build"]);
    assert_eq!(job.runs_on.default_branch, Tri::Yes);
    assert_eq!(job.runs_on.unprotected_branch, Tri::No);
    assert!(
        job.script
            .iter()
            .any(|l| l.contains("172.100.100.9:5050/root/gition/backend:<commit-sha>")),
        "{:?}",
        job.script
    );
}

/// Includes, multi-level extends, references and rules in the monorepo fixture.
#[test]
fn monorepo_details() {
    let cfg = load("monorepo").unwrap();
    assert_eq!(
        cfg.files,
        [
            ".gitlab-ci.yml",
            "ci/templates/base.yml",
            "ci/jobs/build.yml",
            "ci/templates/docker.yml"
        ]
    );
    let not_followed: Vec<&str> = cfg
        .notes
        .iter()
        .filter(|n| n.text.starts_with("include not followed"))
        .map(|n| n.text.as_str())
        .collect();
    assert_eq!(not_followed.len(), 3, "{not_followed:?}");
    assert!(not_followed.iter().any(|n| n.contains("Security/SAST")));
    let compile = cfg.job("compile").unwrap();
    assert_eq!(
        compile.tags_origin,
        Origin::Extends {
            from: ".compile-base".into()
        }
    );
    assert_eq!(compile.extends, [".compile-base", ".build-base", ".docker"]);
    assert_eq!(
        compile.script,
        ["echo setup", "export PATH=$PATH:/opt/tools", "make"]
    );
    // the tag's location is where the reference was written
    assert_eq!(compile.tags[0].loc.file, "ci/templates/base.yml");
    let lint = cfg.job("lint").unwrap();
    assert_eq!(lint.tags_origin, Origin::Job);
    assert_eq!(lint.stage, "lint");
    let unit = cfg.job("unit").unwrap();
    assert_eq!(unit.tags[1].raw, "gpu-${GPU_POOL}");
    let build = cfg.job("image-build").unwrap();
    assert_eq!(build.tags_origin, Origin::Default);
    assert_eq!(build.services[0].alias.as_deref(), Some("docker"));
    assert_eq!(
        build.services[0]
            .variables
            .get("DOCKER_MIN_API_VERSION")
            .map(String::as_str),
        Some("1.24")
    );
    assert_eq!(build.variables["DOCKER_HOST"], "tcp://docker:2375");
    let docs = cfg.job("docs").unwrap();
    assert_eq!(docs.tags_origin, Origin::Unset);
    assert_eq!(docs.runs_on.default_branch, Tri::Yes);
    assert_eq!(docs.runs_on.unprotected_branch, Tri::No);
    let deploy = cfg.job("deploy").unwrap();
    assert_eq!(deploy.runs_on.default_branch, Tri::Yes);
    assert_eq!(deploy.runs_on.unprotected_branch, Tri::No);
    assert_eq!(lint.runs_on.unprotected_branch, Tri::Yes);
}

/// `only`/`except` on the legacy file.
#[test]
fn legacy_only_except() {
    let cfg = load("legacy").unwrap();
    let release = cfg.job("release").unwrap();
    assert_eq!(release.runs_on.default_branch, Tri::No);
    assert_eq!(release.stage, "release");
    let build = cfg.job("build").unwrap();
    assert_eq!(build.runs_on.unprotected_branch, Tri::Yes);
    assert_eq!(build.image_origin, Origin::Default);
}

fn quick<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "{what} took {took:?}");
    out
}

/// An `extends` cycle is an error naming the chain and the line of the `extends`.
#[test]
fn extends_cycle_is_a_located_error() {
    let err = quick("cycle", || load("cycle")).unwrap_err();
    assert!(
        err.message
            .contains("circular dependency detected in `extends`"),
        "{err}"
    );
    assert!(err.message.contains(".a → .b → .c → .a"), "{err}");
    // located at the `extends` that closes the loop
    assert_eq!(
        (err.loc.file.as_str(), err.loc.line),
        (".gitlab-ci.yml", 9),
        "{err}"
    );
}

/// Deeper than GitLab's ten levels of `extends`, an unknown parent, and a reference to nothing.
#[test]
fn extends_limits_and_bad_references() {
    let mut deep = String::new();
    for i in 0..12 {
        deep.push_str(&format!(".l{i}:\n  extends: .l{}\n", i + 1));
    }
    deep.push_str(".l12:\n  tags: [x]\njob:\n  extends: .l0\n  script: [true]\n");
    let err = gitlab_ci::evaluate_text("deep.yml", &deep, &ctx()).unwrap_err();
    assert!(err.message.contains("nesting too deep"), "{err}");
    let err = gitlab_ci::evaluate_text("u.yml", "job:\n  extends: .nope\n  script: [x]\n", &ctx())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "u.yml:2:12: job: unknown key in `extends` (.nope)"
    );
    let err = gitlab_ci::evaluate_text(
        "r.yml",
        "job:\n  script: [x]\n  tags: !reference [.missing, tags]\n",
        &ctx(),
    )
    .unwrap_err();
    assert!(
        err.message
            .contains("!reference [\".missing\", \"tags\"] could not be found"),
        "{err}"
    );
    assert_eq!(err.loc.line, 3);
    // references that point at each other
    let err = gitlab_ci::evaluate_text(
        "c.yml",
        ".a:\n  tags: !reference [.b, tags]\n.b:\n  tags: !reference [.a, tags]\njob:\n  script: [x]\n  tags: !reference [.a, tags]\n",
        &ctx(),
    )
    .unwrap_err();
    assert!(err.message.contains("circular"), "{err}");
}

/// A billion-laughs alias bomb is refused by the alias budget, quickly, with a location.
#[test]
fn alias_bomb_is_refused_quickly() {
    let mut bomb = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
    let mut prev = "a";
    for n in names {
        let refs = vec![format!("*{prev}"); 10].join(", ");
        bomb.push_str(&format!("{n}: &{n} [{refs}]\n"));
        prev = n;
    }
    bomb.push_str("job:\n  script: *i\n");
    let err = quick("alias bomb", || {
        gitlab_ci::evaluate_text("bomb.yml", &bomb, &ctx())
    })
    .unwrap_err();
    assert!(err.message.contains("alias"), "{err}");
    assert_eq!(err.loc.file, "bomb.yml");
    assert!(err.loc.line > 0, "{err}");
}

/// A 50 MB file is refused before parsing.
#[test]
fn huge_file_is_refused_quickly() {
    let line = "job: {script: [echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]}\n";
    let huge = line.repeat(50 * 1024 * 1024 / line.len() + 1);
    let err = quick("50 MB", || {
        gitlab_ci::evaluate_text("huge.yml", &huge, &ctx())
    })
    .unwrap_err();
    assert!(err.message.contains("bytes"), "{err}");
    assert_eq!(err.loc.file, "huge.yml");
}

/// Deep nesting and syntax errors are located errors, not a stack overflow.
#[test]
fn deep_and_broken_yaml() {
    let deep = format!("job: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let err = quick("deep", || {
        gitlab_ci::evaluate_text("deep.yml", &deep, &ctx())
    })
    .unwrap_err();
    assert_eq!(err.loc.line, 1, "{err}");
    let err =
        gitlab_ci::evaluate_text("bad.yml", "job:\n  script: [a\n  tags: x\n", &ctx()).unwrap_err();
    assert_eq!(err.loc.file, "bad.yml");
    assert!(err.loc.line >= 2, "{err}");
    let err = gitlab_ci::evaluate_text(
        "inc.yml",
        "include: [missing.yml]\njob: {script: [x]}\n",
        &ctx(),
    )
    .unwrap_err();
    assert!(
        err.message
            .contains("Local file `missing.yml` does not exist!"),
        "{err}"
    );
}
