//! Kubernetes objects in kubectl's documented JSON shape (one sample per kind, written for these
//! tests) and the incident's manifests as multi-document YAML.

use pulldoctor::parse::kube::{Objects, parse_objects};

mod common;

#[allow(clippy::unwrap_used)]
fn fixture(name: &str) -> String {
    std::fs::read_to_string(common::root().join("tests/fixtures/kube").join(name)).unwrap()
}

#[allow(clippy::unwrap_used)]
fn get_all() -> Objects {
    parse_objects(&fixture("get-all.json"), "get-all.json").unwrap()
}

/// Every workload kind, with containers, init containers, pull secrets and owners.
#[test]
fn kubectl_list_workloads() {
    let o = get_all();
    let kinds: Vec<&str> = o.workloads.iter().map(|w| w.object.kind.as_str()).collect();
    for k in [
        "Pod",
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let api = o
        .workloads
        .iter()
        .find(|w| w.object.kind == "Deployment" && w.object.name == "api")
        .unwrap();
    assert_eq!(api.object.namespace.as_deref(), Some("gition"));
    assert_eq!(api.pull_secrets, vec!["gitlab-registry"]);
    let images: Vec<(&str, bool)> = api
        .containers
        .iter()
        .map(|c| (c.image.as_str(), c.init))
        .collect();
    assert_eq!(
        images,
        vec![
            ("172.100.100.9:5050/root/gition/api:latest", true),
            ("172.100.100.9:5050/root/gition/api:latest", false)
        ]
    );
    let cron = o
        .workloads
        .iter()
        .find(|w| w.object.kind == "CronJob")
        .unwrap();
    assert_eq!(
        cron.containers[0].image,
        "172.100.100.9:5050/root/gition/Backup:nightly"
    );
    let pod = o
        .workloads
        .iter()
        .find(|w| w.object.name == "api-7d9f6c5b8-x2x9q")
        .unwrap();
    assert_eq!(pod.owner.as_deref(), Some("ReplicaSet/api-7d9f6c5b8"));
    assert_eq!(pod.service_account.as_deref(), Some("default"));
    let ds = o
        .workloads
        .iter()
        .find(|w| w.object.kind == "DaemonSet")
        .unwrap();
    assert_eq!(ds.object.namespace.as_deref(), Some("kube-system"));
    assert!(ds.pull_secrets.is_empty());
}

/// Pods: phase, node, and the waiting reasons of failed pulls with kubelet's message.
#[test]
fn kubectl_list_pods() {
    let o = get_all();
    assert_eq!(o.pods.len(), 3);
    let api = &o.pods[0];
    assert_eq!(api.phase.as_deref(), Some("Pending"));
    assert_eq!(api.node.as_deref(), Some("k8s-n1"));
    let w: Vec<_> = api.pull_failures().collect();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].reason, "ImagePullBackOff");
    assert!(
        w[0].message
            .as_deref()
            .unwrap()
            .starts_with("Back-off pulling image")
    );
    assert_eq!(
        o.pods[1].pull_failures().next().unwrap().reason,
        "ErrImagePull"
    );
    assert_eq!(o.pods[2].pull_failures().count(), 0);
}

/// Events: the object, reason, node, count and times.
#[test]
fn kubectl_list_events() {
    let o = get_all();
    assert_eq!(o.events.len(), 5);
    let failed = &o.events[1];
    assert_eq!(failed.reason.as_deref(), Some("Failed"));
    assert_eq!(failed.kind.as_deref(), Some("Warning"));
    assert_eq!(failed.involved.name, "api-7d9f6c5b8-x2x9q");
    assert_eq!(failed.involved.kind, "Pod");
    assert_eq!(failed.host.as_deref(), Some("k8s-n1"));
    assert_eq!(failed.count, 4);
    assert_eq!(failed.first.as_deref(), Some("2024-03-01T09:12:48Z"));
    assert_eq!(failed.last.as_deref(), Some("2024-03-01T09:14:23Z"));
    assert!(failed.message.contains("no route to host"));
}

/// events.k8s.io/v1 events (`regarding`, `note`, `series`) read like core ones.
#[test]
fn events_k8s_io() {
    let o = parse_objects(
        r#"{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"e","namespace":"gition"},
            "eventTime":"2024-03-01T09:12:48.000000Z","reason":"Failed","type":"Warning",
            "note":"Failed to pull image \"a/b:1\": not found","reportingController":"kubelet",
            "reportingInstance":"k8s-n2","regarding":{"kind":"Pod","name":"p","namespace":"gition"},
            "series":{"count":7,"lastObservedTime":"2024-03-01T09:20:00.000000Z"}}"#,
        "-",
    )
    .unwrap();
    let e = &o.events[0];
    assert_eq!((e.count, e.host.as_deref()), (7, Some("k8s-n2")));
    assert_eq!(e.involved.name, "p");
    assert_eq!(e.last.as_deref(), Some("2024-03-01T09:20:00.000000Z"));
    assert!(e.message.starts_with("Failed to pull"));
}

/// Nodes give their InternalIP and control-plane role.
#[test]
fn kubectl_list_nodes() {
    let o = get_all();
    let nodes: Vec<(&str, Option<&str>, bool)> = o
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.internal_ip.as_deref(), n.control_plane))
        .collect();
    assert_eq!(
        nodes,
        vec![
            ("k8s-m", Some("172.100.100.10"), true),
            ("k8s-n1", Some("172.100.100.11"), false),
            ("k8s-n2", Some("172.100.100.12"), false),
            ("k8s-n3", Some("172.100.100.13"), false),
        ]
    );
}

/// Pull secrets go to the dockercfg reader; other Secrets keep only their type; no value leaks
/// through Debug.
#[test]
fn kubectl_list_secrets() {
    let o = get_all();
    assert_eq!(o.secrets.len(), 2);
    let pull = &o.secrets[0];
    assert_eq!(pull.object.name, "gitlab-registry");
    let cfg = pull.docker_config.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(cfg.entries[0].key, "172.100.100.9:5050");
    assert_eq!(
        cfg.entries[0].username.as_deref(),
        Some("gitlab+deploy-token-3")
    );
    let other = &o.secrets[1];
    assert_eq!(
        other.type_.as_deref(),
        Some("kubernetes.io/service-account-token")
    );
    assert!(other.docker_config.is_none());
    let debug = format!("{o:?}");
    assert!(!debug.contains("gldt-Fixture0nlyNotAToken"));
}

/// The incident's manifests: documents, namespaces, and the line of every image.
#[test]
fn manifests_multi_document() {
    let o = parse_objects(&fixture("gition.yaml"), "gition.yaml").unwrap();
    let found: Vec<(&str, Option<u64>, &str, Option<u64>)> = o
        .workloads
        .iter()
        .map(|w| {
            (
                w.object.name.as_str(),
                w.object.line,
                w.containers[0].image.as_str(),
                w.containers[0].line,
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "api",
                Some(8),
                "172.100.100.9:5050/root/gition/api:latest",
                Some(29)
            ),
            (
                "react",
                Some(47),
                "172.100.100.9:5050/root/gition/react:latest",
                Some(63)
            ),
        ]
    );
    assert_eq!(o.workloads[1].pull_secrets, vec!["gitlab-registry"]);
    assert_eq!(o.skipped.len(), 2, "{:?}", o.skipped);
}

/// A bad manifest names the file, line and column.
#[test]
fn manifest_error_located() {
    let e = parse_objects(&fixture("bad.yaml"), "bad.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("bad.yaml: line 11, column 10: not valid YAML"),
        "{e}"
    );
}
