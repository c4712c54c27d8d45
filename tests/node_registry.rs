//! `registry.scheme`, node side: what containerd on a node will speak to the registry, from the
//! gather script's output. Fixtures `lab-*.txt` are real outputs of `GATHER_SCRIPT` in the lab's
//! node (containerd 1.6.20) with each node fault injected; `c2.*.txt` are hand-written for
//! containerd 2.x (none runs here). `tests/fixtures/node_registry/README.md` says what each shows.
//! The last test runs the script against a real lab node when this machine can run the lab.

// test code: a failed unwrap is a failed test
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pulldoctor::check::node_registry::{
    GATHER_SCRIPT, GatherError, NodeFacts, NodeFault, NodeVerdict, PullPath, Scheme, evaluate,
    findings, parse_gathered,
};
use pulldoctor::model::{Class, Confidence, EvidenceSource, Severity, TargetKind};
mod common;
use common::lab::Lab;
use std::path::PathBuf;
use std::process::Command;

const REGISTRY: &str = "10.88.1.1:5050";

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/node_registry")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn facts(text: &str) -> NodeFacts {
    parse_gathered(text).unwrap_or_else(|e| panic!("parse_gathered: {e}"))
}

fn verdict_of(name: &str) -> NodeVerdict {
    evaluate(&facts(&fixture(name)), REGISTRY)
}

/// A lab output with the containerd version line replaced: what the same files mean to another
/// containerd.
fn as_version(name: &str, version_line: &str) -> NodeVerdict {
    let text = fixture(name).replace(
        "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3",
        version_line,
    );
    assert!(text.contains(version_line));
    evaluate(&facts(&text), REGISTRY)
}

const V2_1_4: &str = "containerd github.com/containerd/containerd/v2 v2.1.4 0123456789abcdef";
const V2_0_5: &str = "containerd github.com/containerd/containerd/v2 v2.0.5 0123456789abcdef";
const V1_7_32: &str = "containerd containerd.io 1.7.32 0123456789abcdef";

fn fix_ids(v: &NodeVerdict) -> Vec<String> {
    findings(v, "k8s-n1", REGISTRY, Some(true))
        .first()
        .map(|f| f.fixes.iter().map(|x| x.id.clone()).collect())
        .unwrap_or_default()
}

fn reasons(v: &NodeVerdict) -> String {
    v.reasons.join("\n")
}

// ------------------------------------------------------------------------------ the lab (1.6.20)

#[test]
fn lab_healthy_is_http_and_no_finding() {
    for name in ["lab-healthy.txt", "lab-healthy-busybox.txt"] {
        let v = verdict_of(name);
        assert_eq!(v.scheme, Scheme::Http, "{name}: {}", reasons(&v));
        assert_eq!(v.pull_path, PullPath::Local);
        assert_eq!(v.config_path, "/etc/containerd/certs.d");
        assert_eq!(
            v.hosts_toml.as_deref(),
            Some("/etc/containerd/certs.d/10.88.1.1:5050/hosts.toml")
        );
        assert!(v.faults.is_empty(), "{name}: {:?}", v.faults);
        assert_eq!(v.endpoints.len(), 2);
        assert_eq!(v.endpoints[0].url, "http://10.88.1.1:5050/v2");
        for speaks in [Some(true), None] {
            assert!(findings(&v, "k8snode", REGISTRY, speaks).is_empty());
        }
        let f = facts(&fixture(name));
        assert_eq!(f.version.as_ref().unwrap().to_string(), "1.6.20");
        // other labs' containerds may run too: exactly one shares the node's mount namespace
        assert_eq!(f.processes.iter().filter(|p| p.same_mount_ns).count(), 1);
        assert_eq!(f.hostname, "k8snode");
        assert!(f.dump.as_ref().is_some_and(|d| d.rc == 0));
    }
}

#[test]
fn lab_no_hosts_toml_is_https() {
    let v = verdict_of("lab-no-hosts-toml.txt");
    assert_eq!(v.scheme, Scheme::Https);
    assert!(v.has(|f| *f == NodeFault::NoHostDir), "{:?}", v.faults);
    assert_eq!(v.endpoints[0].url, "https://10.88.1.1:5050/v2");
    assert!(
        v.evidence.iter().any(
            |e| e.command == "ls -ld /etc/containerd/certs.d/10.88.1.1:5050"
                && e.text.contains("No such file or directory")
        ),
        "{:?}",
        v.evidence
    );
    assert_eq!(fix_ids(&v), ["hosts-toml-http"]);
}

#[test]
fn lab_no_resolve_without_server_is_https() {
    let v = verdict_of("lab-no-resolve.txt");
    assert_eq!(v.scheme, Scheme::Https, "{}", reasons(&v));
    assert!(
        v.has(|f| matches!(f, NodeFault::NoResolve { host } if host == "http://10.88.1.1:5050"))
    );
    assert!(reasons(&v).contains("without \"resolve\", so it is skipped for tag lookups"));
    assert_eq!(fix_ids(&v), ["hosts-toml-http"]);
}

#[test]
fn lab_no_resolve_with_http_server_is_not_a_fault() {
    // LAB.md: `capabilities = ["pull"]` plus `server = "http://…"` still pulls (the lab pulled)
    let v = verdict_of("lab-no-resolve-with-server.txt");
    assert_eq!(v.scheme, Scheme::Http, "{}", reasons(&v));
    assert!(v.faults.is_empty(), "{:?}", v.faults);
    assert!(reasons(&v).contains("not a fault"));
    assert!(findings(&v, "k8snode", REGISTRY, Some(true)).is_empty());
}

#[test]
fn lab_dir_without_port_is_https() {
    let v = verdict_of("lab-dir-without-port.txt");
    assert_eq!(v.scheme, Scheme::Https);
    assert!(v.has(
        |f| matches!(f, NodeFault::DirWithoutPort { dir } if dir == "/etc/containerd/certs.d/10.88.1.1")
    ));
    assert!(reasons(&v).contains("a directory named without the port never matches"));
    assert!(
        v.evidence.iter().any(
            |e| e.command == "ls -la /etc/containerd/certs.d" && e.text.ends_with(" 10.88.1.1")
        )
    );
}

#[test]
fn lab_server_only_is_rejected_by_1_6_but_not_by_2_x() {
    let v = verdict_of("lab-server-only.txt");
    assert_eq!(v.scheme, Scheme::Https);
    assert!(v.has(
        |f| matches!(f, NodeFault::HostsTomlRejected { why, .. } if why == "invalid `host` tree")
    ));
    assert!(v.hosts_toml.is_none());
    assert!(reasons(&v).contains("failed to decode hosts.toml"));
    // go-toml v2 (2.x) and 1.7.32 accept a file without [host] tables
    for version in [V2_1_4, V1_7_32] {
        let v = as_version("lab-server-only.txt", version);
        assert_eq!(v.scheme, Scheme::Http, "{version}: {}", reasons(&v));
        assert!(v.faults.is_empty(), "{:?}", v.faults);
    }
}

#[test]
fn lab_shadowed_first_dir_wins_on_1_6() {
    let v = verdict_of("lab-config-path-shadowed.txt");
    assert_eq!(v.scheme, Scheme::Https);
    assert_eq!(v.pull_path, PullPath::Local);
    assert_eq!(v.roots, ["/etc/containerd/certs.d", "/etc/docker/certs.d"]);
    assert_eq!(
        v.host_dir.as_deref(),
        Some("/etc/containerd/certs.d/10.88.1.1:5050")
    );
    assert!(v.has(|f| matches!(f, NodeFault::Shadowed { winner, hidden }
        if winner == "/etc/containerd/certs.d/10.88.1.1:5050"
            && hidden == "/etc/docker/certs.d/10.88.1.1:5050/hosts.toml")));
    assert!(reasons(&v).contains("(an empty directory) comes first"));
    assert_eq!(fix_ids(&v), ["hosts-toml-http", "single-config-path"]);
}

#[test]
fn lab_second_dir_is_used_on_1_6_but_not_on_2_1() {
    // 1.6 honours the ':' list: the lab pulled
    let v = verdict_of("lab-config-path-second-dir.txt");
    assert_eq!(v.scheme, Scheme::Http, "{}", reasons(&v));
    assert_eq!(
        v.hosts_toml.as_deref(),
        Some("/etc/docker/certs.d/10.88.1.1:5050/hosts.toml")
    );
    // 2.0 has no transfer-service pull: the list is honoured too
    let v = as_version("lab-config-path-second-dir.txt", V2_0_5);
    assert_eq!(v.scheme, Scheme::Http, "{}", reasons(&v));
    assert!(reasons(&v).contains("migrates the `version = 2` file"));
    // 2.1: the transfer service takes the whole string as one directory
    let v = as_version("lab-config-path-second-dir.txt", V2_1_4);
    assert_eq!(v.scheme, Scheme::Https);
    assert_eq!(v.pull_path, PullPath::TransferService);
    assert!(v.has(|f| matches!(f, NodeFault::TransferServiceMultiPath { .. })));
    assert!(reasons(&v).contains("(/etc/docker/certs.d/10.88.1.1:5050/hosts.toml is one of them)"));
}

#[test]
fn lab_v2_key_on_v1_is_ignored() {
    let v = verdict_of("lab-v2-key-on-v1.txt");
    assert_eq!(v.scheme, Scheme::Https);
    assert_eq!(v.config_path, "");
    assert!(
        v.has(|f| matches!(f, NodeFault::IgnoredConfigPathKey { table }
        if table == "plugins.\"io.containerd.cri.v1.images\".registry"))
    );
    assert!(v.has(|f| *f == NodeFault::NoConfigPath));
    let r = reasons(&v);
    assert!(
        r.contains("containerd 1.6.20 reads config_path from [plugins.\"io.containerd.grpc.v1.cri\".registry]"),
        "{r}"
    );
    assert!(
        r.contains("under the 2.x key [plugins.\"io.containerd.cri.v1.images\".registry], which containerd 1.6.20 ignores, so config_path is empty"),
        "{r}"
    );
    assert!(r.contains("https://10.88.1.1:5050/v2, by default"), "{r}");
    // certs.d/10.88.1.1:5050/hosts.toml is fine: setting config_path alone fixes it
    assert_eq!(v.single_root_scheme, Scheme::Http);
    assert_eq!(fix_ids(&v), ["single-config-path"]);
    assert!(
        v.evidence
            .iter()
            .any(|e| e.text == "[plugins.\"io.containerd.cri.v1.images\".registry]")
    );
}

#[test]
fn lab_invalid_hosts_toml_falls_back_to_https() {
    let v = verdict_of("lab-invalid-hosts-toml.txt");
    assert_eq!(v.scheme, Scheme::Https);
    assert!(
        v.has(|f| matches!(f, NodeFault::HostsTomlRejected { why, .. }
        if why.starts_with("invalid TOML at line 3, column")))
    );
    assert!(
        v.evidence
            .iter()
            .any(|e| e.text == "[host.\"http://10.88.1.1:5050\"")
    );
    assert_eq!(fix_ids(&v), ["hosts-toml-http"]);
}

#[test]
fn lab_invalid_config_toml_is_a_clear_error() {
    let err = parse_gathered(&fixture("lab-invalid-config-toml.txt")).unwrap_err();
    let GatherError::Config(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.file, "/etc/containerd/config.toml");
    assert_eq!(e.line, 3);
    assert!(e.column > 1);
    assert_eq!(
        e.source_line,
        "[plugins.\"io.containerd.grpc.v1.cri\".registry"
    );
    let shown = err.to_string();
    assert!(
        shown.starts_with("/etc/containerd/config.toml: line 3, column "),
        "{shown}"
    );
    assert!(shown.contains("containerd refuses to start"), "{shown}");
}

#[test]
fn incident_hosts_toml_with_skip_verify() {
    // 1.6.20 has no HTTPS-first fallback: plain HTTP (the lab pulled)
    let v = verdict_of("lab-incident-skip-verify.txt");
    assert_eq!(v.scheme, Scheme::Http);
    // 2.x tries HTTPS first for an http host with a TLS setting, then HTTP: still works
    let v = as_version("lab-incident-skip-verify.txt", V2_1_4);
    assert_eq!(v.scheme, Scheme::HttpsThenHttp, "{}", reasons(&v));
    assert!(reasons(&v).contains("host will try HTTPS first"));
    assert!(findings(&v, "k8s-n1", REGISTRY, Some(true)).is_empty());
    assert!(findings(&v, "k8s-n1", REGISTRY, Some(false)).is_empty());
}

// ------------------------------------------------------------------------ containerd 2.x (written)

#[test]
fn c2_1_multi_path_is_ignored_by_the_transfer_service() {
    for name in [
        "c2.1-multi-path-shadowed.txt",
        "c2.1-multi-path-hosts-in-first.txt",
    ] {
        let v = verdict_of(name);
        assert_eq!(v.scheme, Scheme::Https, "{name}");
        assert_eq!(v.pull_path, PullPath::TransferService);
        assert_eq!(
            v.roots,
            ["/etc/containerd/certs.d:/etc/docker/certs.d"],
            "one root: the whole string"
        );
        assert!(v.host_dir.is_none());
        assert!(v.has(|f| matches!(f, NodeFault::TransferServiceMultiPath { .. })));
        assert!(!v.has(|f| *f == NodeFault::NoHostDir), "{:?}", v.faults);
        assert!(reasons(&v).contains("as ONE directory name"));
    }
    // hosts.toml already in the first directory: a single config_path is the whole fix
    assert_eq!(
        fix_ids(&verdict_of("c2.1-multi-path-hosts-in-first.txt")),
        ["single-config-path"]
    );
    assert_eq!(
        fix_ids(&verdict_of("c2.1-multi-path-shadowed.txt")),
        ["hosts-toml-http", "single-config-path"]
    );
}

#[test]
fn c2_1_local_pull_honours_the_list() {
    let v = verdict_of("c2.1-multi-path-local-pull.txt");
    assert_eq!(v.pull_path, PullPath::Local);
    assert_eq!(v.scheme, Scheme::Http, "{}", reasons(&v));
    assert!(reasons(&v).contains("use_local_image_pull = true"));
}

#[test]
fn c2_0_honours_the_list() {
    let v = verdict_of("c2.0-multi-path.txt");
    assert_eq!(v.pull_path, PullPath::Local);
    assert_eq!(v.scheme, Scheme::Http);
}

#[test]
fn c2_1_single_path_and_migrated_version_2_file_work() {
    for name in ["c2.1-single-path.txt", "c2.1-version2-file.txt"] {
        let v = verdict_of(name);
        assert_eq!(v.pull_path, PullPath::TransferService, "{name}");
        assert_eq!(v.scheme, Scheme::Http, "{name}: {}", reasons(&v));
        assert!(v.faults.is_empty(), "{name}: {:?}", v.faults);
    }
    let v = verdict_of("c2.1-version2-file.txt");
    assert!(reasons(&v).contains(
        "migrates the `version = 2` file: [plugins.\"io.containerd.grpc.v1.cri\".registry] becomes [plugins.\"io.containerd.cri.v1.images\".registry]"
    ));
}

#[test]
fn c2_2_0_default_config_path_breaks_hosts_toml() {
    let v = verdict_of("c2.2.0-default-config-path.txt");
    assert_eq!(v.config_path, "/etc/containerd/certs.d:/etc/docker/certs.d");
    assert_eq!(v.scheme, Scheme::Https);
    assert!(reasons(&v).contains("2.2.0 and 2.2.1 default config_path"));
    assert!(
        v.evidence
            .iter()
            .any(|e| e.command == "containerd config dump" && e.text.contains("config_path"))
    );
    assert_eq!(fix_ids(&v), ["single-config-path"]);
}

#[test]
fn c2_2_2_sets_the_default_at_start_up_even_over_an_empty_value() {
    // the lab's version-2 file with config_path = "" (what `containerd config default` of 1.x
    // writes), on 2.2.2: the start-up default applies, and the transfer service breaks it
    let text = fixture("lab-healthy.txt")
        .replace(
            "config_path = \"/etc/containerd/certs.d\"",
            "config_path = \"\"",
        )
        .replace(
            "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3",
            "containerd github.com/containerd/containerd/v2 v2.2.2 0123456789abcdef",
        );
    let v = evaluate(&facts(&text), REGISTRY);
    assert_eq!(v.config_path, "/etc/containerd/certs.d:/etc/docker/certs.d");
    assert_eq!(v.scheme, Scheme::Https, "{}", reasons(&v));
    assert!(reasons(&v).contains("at start-up on Linux"));
    // on 2.1, config_path stays empty: no hosts.toml at all
    let text = text.replace("v2.2.2", "v2.1.4");
    let v = evaluate(&facts(&text), REGISTRY);
    assert_eq!(v.config_path, "");
    assert!(v.has(|f| *f == NodeFault::NoConfigPath));
    assert_eq!(v.scheme, Scheme::Https);
}

// --------------------------------------------------------------------------------- other rules

#[test]
fn legacy_mirrors_and_the_fatal_combination() {
    let mirror = "\n      [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"10.88.1.1:5050\"]\n        endpoint = [\"http://10.88.1.1:5050\"]\n";
    let base = fixture("lab-healthy.txt");
    // config_path empty + a mirror: the legacy path, plain HTTP
    let text = base
        .replace(
            "config_path = \"/etc/containerd/certs.d\"",
            "config_path = \"\"",
        )
        .replace(
            "      [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors]\n",
            mirror,
        );
    let v = evaluate(&facts(&text), REGISTRY);
    assert_eq!(v.scheme, Scheme::Http, "{}", reasons(&v));
    assert!(v.endpoints[0].from.starts_with("registry.mirrors"));
    // a mirror and config_path: the CRI image plugin does not load
    let text = base.replace(
        "      [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors]\n",
        mirror,
    );
    let v = evaluate(&facts(&text), REGISTRY);
    assert_eq!(v.scheme, Scheme::Unknown);
    assert!(v.has(|f| matches!(f, NodeFault::PluginFails { error } if error.contains("`mirrors` cannot be set"))));
    assert!(findings(&v, "n", REGISTRY, Some(true)).is_empty());
    assert!(
        reasons(&v).contains("invalid plugin config"),
        "1.6.20's wording"
    );
    // configs.tls and config_path: 1.6.20 refuses that too (seen in the lab)
    let tls = "\n        [plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"10.88.1.1:5050\".tls]\n          insecure_skip_verify = true\n";
    let text = base.replace(
        "      [plugins.\"io.containerd.grpc.v1.cri\".registry.configs]\n",
        &format!("      [plugins.\"io.containerd.grpc.v1.cri\".registry.configs]{tls}"),
    );
    let v = evaluate(&facts(&text), REGISTRY);
    assert!(
        v.has(|f| matches!(f, NodeFault::PluginFails { error } if error.contains("`configs.tls`"))),
        "{}",
        reasons(&v)
    );
}

#[test]
fn localhost_registries() {
    // no certs.d entry for it: the default endpoint
    let f = facts(&fixture("lab-healthy.txt"));
    let v = evaluate(&f, "localhost:5000");
    assert_eq!(v.scheme, Scheme::Http, "{}", reasons(&v));
    assert!(reasons(&v).contains("gathered for 10.88.1.1:5050"));
    let v = evaluate(&f, "127.0.0.1:443");
    assert_eq!(v.scheme, Scheme::Http, "1.6 has no port rule");
    let f = facts(&fixture("c2.1-single-path.txt"));
    assert_eq!(evaluate(&f, "localhost:5000").scheme, Scheme::HttpsThenHttp);
    assert_eq!(evaluate(&f, "localhost:80").scheme, Scheme::Http);
    assert_eq!(evaluate(&f, "localhost").scheme, Scheme::Https);
}

#[test]
fn config_changed_after_start_is_noticed() {
    let text = fixture("lab-healthy.txt");
    let f = facts(&text);
    let started = f.processes[0].started.unwrap();
    let mtime = f.config_file.as_ref().unwrap().mtime.unwrap();
    let text = text.replace(
        &format!("mtime={mtime} truncated=0 path=/etc/containerd/config.toml"),
        &format!(
            "mtime={} truncated=0 path=/etc/containerd/config.toml",
            started + 600
        ),
    );
    let v = evaluate(&facts(&text), REGISTRY);
    assert!(v.has(|f| *f == NodeFault::ConfigChangedSinceStart));
    assert!(reasons(&v).contains("systemctl restart containerd"));
    assert!(!verdict_of("lab-healthy.txt").has(|f| *f == NodeFault::ConfigChangedSinceStart));
}

#[test]
fn a_missing_ca_file_is_reported() {
    let text = fixture("lab-healthy.txt")
        .replace(
            "  capabilities = [\"pull\", \"resolve\"]\n\n",
            "  capabilities = [\"pull\", \"resolve\"]\n  ca = \"ca.crt\"\n\n",
        )
        .replace(
            "begin tls-files path=/etc/containerd/certs.d/10.88.1.1:5050\n",
            "begin tls-files path=/etc/containerd/certs.d/10.88.1.1:5050\nmissing /etc/containerd/certs.d/10.88.1.1:5050/ca.crt",
        );
    let v = evaluate(&facts(&text), REGISTRY);
    assert!(
        v.has(|f| matches!(f, NodeFault::MissingTlsFile { path } if path.ends_with("/ca.crt"))),
        "{:?}\n{}",
        v.faults,
        reasons(&v)
    );
}

#[test]
fn unknown_capability_and_version_gates() {
    let text = fixture("lab-healthy.txt").replace(
        "capabilities = [\"pull\", \"resolve\"]",
        "capabilities = [\"pull\", \"resolve\", \"referrers\"]",
    );
    // 1.6 knows three capabilities: the file is rejected
    let v = evaluate(&facts(&text), REGISTRY);
    assert!(v.has(|f| matches!(f, NodeFault::HostsTomlRejected { why, .. } if why == "unknown capability referrers")));
    assert_eq!(v.scheme, Scheme::Https);
}

#[test]
fn no_version_means_unknown() {
    let text = fixture("lab-healthy.txt").replace(
        "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3",
        "sh: 1: containerd: not found",
    );
    let v = evaluate(&facts(&text), REGISTRY);
    assert_eq!(v.scheme, Scheme::Unknown);
    assert!(v.has(|f| *f == NodeFault::VersionUnknown));
    assert!(findings(&v, "n", REGISTRY, None).is_empty());
}

#[test]
fn gather_output_errors() {
    assert_eq!(
        parse_gathered("Permission denied (publickey)."),
        Err(GatherError::NotGatherOutput)
    );
    let cut: String = fixture("lab-healthy.txt")
        .lines()
        .take(40)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(matches!(
        parse_gathered(&cut),
        Err(GatherError::Truncated(_))
    ));
    // CRLF (a pty) changes nothing
    let crlf = fixture("lab-no-hosts-toml.txt").replace('\n', "\r\n");
    assert_eq!(evaluate(&facts(&crlf), REGISTRY).scheme, Scheme::Https);
}

// ------------------------------------------------------------------------------------- findings

#[test]
fn finding_shape() {
    let v = verdict_of("lab-config-path-shadowed.txt");
    let f = findings(&v, "k8s-n1", REGISTRY, Some(true));
    assert_eq!(f.len(), 1);
    let f = &f[0];
    assert_eq!(f.check.0, "registry.scheme");
    assert_eq!(f.class, Class::HttpVsHttps);
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.confidence, Confidence::Confirmed);
    assert_eq!(f.target.kind, TargetKind::Node);
    assert_eq!(f.target.name, "k8s-n1");
    assert_eq!(f.subject.registry.as_deref(), Some(REGISTRY));
    assert_eq!(f.subject.nodes, ["k8s-n1"]);
    assert_eq!(
        f.subject.endpoint.as_deref(),
        Some("https://10.88.1.1:5050/v2")
    );
    assert_eq!(f.count, 1);
    assert!(f.explanation.contains("never read"), "{}", f.explanation);
    assert!(!f.next_steps.is_empty());
    assert!(f.fixes.iter().all(|x| !x.title.is_empty()));
    for e in &f.evidence {
        let EvidenceSource::Command { host, command } = &e.source else {
            panic!("{e:?}")
        };
        assert_eq!(host, "k8s-n1");
        assert!(!command.is_empty() && !e.text.is_empty());
    }
    assert!(f.evidence.iter().any(|e| matches!(&e.source,
        EvidenceSource::Command { command, .. } if command == "cat /etc/containerd/config.toml")
        && e.text.trim() == "config_path = \"/etc/containerd/certs.d:/etc/docker/certs.d\""));
    // stable ids: same node and registry, same id; another node, another id
    let again = findings(&v, "k8s-n1", REGISTRY, Some(true));
    assert_eq!(again[0].id, f.id);
    assert_ne!(findings(&v, "k8s-n2", REGISTRY, Some(true))[0].id, f.id);
    // what the registry speaks is not known: a warning that says when it matters
    let w = findings(&v, "k8s-n1", REGISTRY, None);
    assert_eq!(w[0].severity, Severity::Warning);
    assert!(
        w[0].explanation
            .contains("only a problem if the registry speaks plain HTTP")
    );
    assert_eq!(w[0].id, f.id);
    // an HTTPS registry: HTTPS is right
    assert!(findings(&v, "k8s-n1", REGISTRY, Some(false)).is_empty());
    // the reverse mismatch: plain HTTP to an HTTPS registry
    let healthy = verdict_of("lab-healthy.txt");
    let r = findings(&healthy, "k8s-n1", REGISTRY, Some(false));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].severity, Severity::Error);
    // the report schema accepts it
    serde_json::to_value(f).unwrap();
}

// ------------------------------------------------------------------------------- the script

#[test]
fn gather_script_is_posix_and_bounded() {
    assert!(GATHER_SCRIPT.contains("exec </dev/null"));
    assert!(GATHER_SCRIPT.contains("CAP=65536"));
    assert!(!GATHER_SCRIPT.contains("journalctl"));
    assert!(!GATHER_SCRIPT.contains("[[ "), "no bash tests");
    assert!(!GATHER_SCRIPT.contains("local "), "no `local`");
    for shell in ["sh", "dash", "bash"] {
        let Ok(out) = Command::new(shell)
            .arg("-n")
            .arg("-c")
            .arg(GATHER_SCRIPT)
            .output()
        else {
            continue;
        };
        assert!(
            out.status.success(),
            "{shell} -n: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The script runs on this machine (whatever containerd it has, or none) and its output parses.
#[test]
fn gather_script_runs_here() {
    let out = Command::new("sh")
        .arg("-c")
        .arg(GATHER_SCRIPT)
        .env("PD_REGISTRY", "registry.invalid:5050")
        .env(
            "PD_CONTAINERD_CONFIG",
            "/nonexistent/pulldoctor/config.toml",
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.len() < 2 * 1024 * 1024);
    let f = parse_gathered(&text).unwrap();
    assert_eq!(f.registry, "registry.invalid:5050");
    assert!(f.config_file.is_none());
    assert!(
        f.dirs
            .iter()
            .any(|d| d.path == "/etc/containerd/certs.d/registry.invalid:5050" && !d.exists)
    );
    let _ = evaluate(&f, "registry.invalid:5050");
}

// ------------------------------------------------------------------------------- the real lab

/// The gather script run in the lab's node.
fn gather(lab: &Lab) -> NodeFacts {
    let out = lab.ok(&[
        "exec",
        "k8snode",
        "env",
        &format!("PD_REGISTRY={REGISTRY}"),
        "sh",
        "-c",
        GATHER_SCRIPT,
    ]);
    parse_gathered(&out).unwrap()
}

/// The script in the real lab node: HTTP when healthy, HTTPS with `no-hosts-toml`.
#[test]
fn real_lab_node() {
    let t0 = std::time::Instant::now();
    let lab = match Lab::up("pdnr-", "node-registry-pass") {
        Ok(lab) => lab,
        Err(why) => {
            eprintln!("SKIPPED real lab node test: {why}");
            return;
        }
    };
    let healthy = gather(&lab);
    assert_eq!(healthy.hostname, "k8snode");
    let v = evaluate(&healthy, REGISTRY);
    assert_eq!(v.scheme, Scheme::Http, "{}", reasons(&v));
    assert!(v.faults.is_empty(), "{:?}", v.faults);

    lab.ok(&["fault", "no-hosts-toml"]);
    let broken = gather(&lab);
    let v = evaluate(&broken, REGISTRY);
    assert_eq!(v.scheme, Scheme::Https, "{}", reasons(&v));
    assert!(v.has(|f| *f == NodeFault::NoHostDir));
    assert_eq!(
        findings(&v, "k8snode", REGISTRY, Some(true))[0].fixes[0].id,
        "hosts-toml-http"
    );
    eprintln!("real lab node test: {:.1} s", t0.elapsed().as_secs_f64());
}
