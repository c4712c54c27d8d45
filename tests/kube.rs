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

/// `kubectl` output of the fixture, as a bundle would hold it: the namespaced resources, and the
/// nodes apart.
#[allow(clippy::unwrap_used)]
fn kubectl_bundle() -> pulldoctor::probe::bundle::Bundle {
    use pulldoctor::check::cluster::{ClusterSource, RESOURCES};
    use pulldoctor::probe::bundle::{Bundle, ProbeRecord, RecordedOutput};
    let all: serde_json::Value = serde_json::from_str(&fixture("get-all.json")).unwrap();
    let (nodes, rest): (Vec<_>, Vec<_>) = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .partition(|i| i["kind"] == "Node");
    let list = |items: Vec<serde_json::Value>| {
        serde_json::to_string_pretty(&serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}})).unwrap()
    };
    let argvs = ClusterSource::Local {
        namespace: Some("gition".into()),
    }
    .kubectl_argvs();
    assert!(argvs[0].contains(&RESOURCES.to_string()));
    let mut b = Bundle::new();
    for (argv, stdout) in argvs.into_iter().zip([list(rest), list(nodes)]) {
        b.probes.push(ProbeRecord::Local {
            argv,
            result: Ok(RecordedOutput {
                exit_status: Some(0),
                stdout,
                stderr: String::new(),
                duration_ms: 40,
            }),
        });
    }
    b
}

/// The cluster view replayed from kubectl's output: each failing pod's events classified and
/// put on the node the pod runs on; upper case in a workload's image reported; no password out.
#[test]
#[allow(clippy::unwrap_used)]
fn cluster_view_from_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("kubectl.bundle.json");
    std::fs::write(&bundle, serde_json::to_string(&kubectl_bundle()).unwrap()).unwrap();
    let out = common::run(
        &[
            "--headless",
            "--replay",
            bundle.to_str().unwrap(),
            "--kube-namespace",
            "gition",
        ],
        b"",
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("gldt-Fixture0nlyNotAToken"));
    assert_eq!(
        common::code(&out),
        1,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = common::report(&out);
    let findings = report["findings"].as_array().unwrap();
    let cluster: Vec<(&str, &str, u64)> = findings
        .iter()
        .filter(|f| f["check"] == "cluster.pulls")
        .map(|f| {
            (
                f["class"].as_str().unwrap(),
                f["target"]["name"].as_str().unwrap(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cluster,
        vec![
            ("token_realm_unreachable", "k8s-n1", 4),
            ("image_not_found", "k8s-n2", 3),
            ("none", "cluster nodes", 4)
        ],
        "{report:#}"
    );
    let realm = findings
        .iter()
        .find(|f| f["class"] == "token_realm_unreachable")
        .unwrap();
    assert_eq!(realm["subject"]["endpoint"], "192.168.5.8:80");
    assert!(
        realm["explanation"].as_str().unwrap().ends_with(
            "On k8s-n1: pod gition/api-7d9f6c5b8-x2x9q of ReplicaSet/api-7d9f6c5b8: 172.100.100.9:5050/root/gition/api:latest (api, ImagePullBackOff); imagePullSecrets [gitlab-registry]."
        ),
        "{realm:#}"
    );
    assert_eq!(realm["evidence"][0]["host"], "k8s-n1");
    assert!(
        realm["evidence"][0]["source"]["command"]
            .as_str()
            .unwrap()
            .starts_with("kubectl get pods,deployments")
    );
    let offer = findings.iter().find(|f| f["class"] == "none").unwrap();
    assert_eq!(offer["severity"], "info");
    assert!(
        offer["title"]
            .as_str()
            .unwrap()
            .ends_with("k8s-m (172.100.100.10), k8s-n1 (172.100.100.11), k8s-n2 (172.100.100.12), k8s-n3 (172.100.100.13)"),
        "{offer:#}"
    );
    assert!(
        offer["next_steps"][1]
            .as_str()
            .unwrap()
            .contains("ssh = \"172.100.100.11\"")
    );
    let names: Vec<&str> = findings
        .iter()
        .filter(|f| f["check"] == "image.names")
        .map(|f| f["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["172.100.100.9:5050/root/gition/Backup:nightly is not a valid image name"]
    );
}

/// A pull secret without an `auths` key for the image's host:port, and one that is missing.
#[test]
#[allow(clippy::unwrap_used)]
fn pull_secret_mismatch() {
    use pulldoctor::check::cluster::{ClusterView, pull_secret_findings};
    let text = fixture("get-all.json").replace(
        "172.100.100.9:5050/root/gition/api",
        "gitlab.example.com:5050/root/gition/api",
    );
    let o = parse_objects(&text, "get-all.json").unwrap();
    let view = ClusterView {
        parts: vec![("local: kubectl get".into(), true, o)],
        problems: Vec::new(),
    };
    let f = pull_secret_findings(&view);
    let titles: Vec<&str> = f.iter().map(|f| f.title.as_str()).collect();
    assert_eq!(
        titles,
        vec!["Pull secret 'gitlab-registry' has no credentials for gitlab.example.com:5050"],
        "{f:#?}"
    );
    assert_eq!(f[0].class, pulldoctor::model::Class::AuthDenied);
    let missing = parse_objects(
        &fixture("get-all.json").replace(
            "\"name\": \"gitlab-registry\",\n                \"namespace\"",
            "\"name\": \"old-registry\",\n                \"namespace\"",
        ),
        "x",
    )
    .unwrap();
    let view = ClusterView {
        parts: vec![("local: kubectl get".into(), true, missing)],
        problems: Vec::new(),
    };
    let f = pull_secret_findings(&view);
    assert!(
        f.iter()
            .any(|f| f.title == "Pull secret 'gitlab-registry' does not exist in namespace gition"),
        "{f:#?}"
    );
}

/// Local commands: run, recorded with Secret values masked, replayed from the bundle; a program
/// that cannot start is an error naming it.
#[test]
#[allow(clippy::unwrap_used)]
fn run_local_record_replay() {
    use pulldoctor::probe::{LiveProbes, Probes, RecordingProbes, ReplayProbes};
    use std::sync::Arc;
    let secret =
        r#"{"kind":"Secret","metadata":{"name":"t"},"data":{"token":"c2VjcmV0LXRva2VuLXZhbHVl"}}"#;
    let dir = tempfile::tempdir().unwrap();
    let file = common::write(dir.path(), "secret.json", secret.as_bytes());
    let argv: Vec<String> = vec!["cat".into(), file.display().to_string()];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let live: Arc<dyn Probes> = Arc::new(LiveProbes::new(None));
    let out = rt.block_on(live.run_local(&argv)).unwrap();
    assert_eq!(out.exit_status, Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), secret);
    let rec = RecordingProbes::new(live.clone(), pulldoctor::redact::Redactor::default());
    let seen = rt.block_on(rec.run_local(&argv)).unwrap();
    let seen = String::from_utf8(seen.stdout).unwrap();
    assert!(!seen.contains("c2VjcmV0LXRva2VuLXZhbHVl"), "{seen}");
    let bundle = rec.bundle();
    let json = serde_json::to_string(&bundle).unwrap();
    assert!(json.contains("\"kind\":\"local\"") && !json.contains("c2VjcmV0LXRva2VuLXZhbHVl"));
    let replay = ReplayProbes::new(pulldoctor::probe::bundle::Bundle::from_json(&json).unwrap());
    let again = rt.block_on(replay.run_local(&argv)).unwrap();
    assert_eq!(String::from_utf8(again.stdout).unwrap(), seen);
    let other: Vec<String> = vec!["cat".into(), "other".into()];
    assert!(rt.block_on(replay.run_local(&other)).is_err());
    let missing: Vec<String> = vec!["/nonexistent/kubectl".into(), "get".into()];
    let e = rt
        .block_on(live.run_local(&missing))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/kubectl get"), "{e}");
}

/// With a control-plane host in the inventory, kubectl runs there over SSH (replayed here): the
/// same view; nodes the inventory already has are not offered again; a hostile namespace is
/// quoted for the shell.
#[test]
#[allow(clippy::unwrap_used)]
fn cluster_view_over_ssh() {
    use pulldoctor::check::cluster::{ClusterSource, shell_command};
    use pulldoctor::probe::bundle::{ProbeRecord, RecordedOutput};
    let local = kubectl_bundle();
    let mut b = pulldoctor::probe::bundle::Bundle::new();
    b.inventory = Some(
        "[kubernetes]\nnamespace = \"gition\"\n[[host]]\nname = \"k8s-m\"\nssh = \"root@172.100.100.10\"\nroles = [\"control-plane\"]\n"
            .to_string(),
    );
    b.probes.push(ProbeRecord::Exec {
        host: "k8s-m".into(),
        command: "true".into(),
        result: Ok(RecordedOutput {
            exit_status: Some(0),
            stdout: String::new(),
            stderr: String::new(),
            duration_ms: 1,
        }),
    });
    for rec in local.probes {
        if let ProbeRecord::Local { argv, result } = rec {
            b.probes.push(ProbeRecord::Exec {
                host: "k8s-m".into(),
                command: shell_command(&argv),
                result,
            });
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ssh.bundle.json");
    std::fs::write(&bundle, serde_json::to_string(&b).unwrap()).unwrap();
    let out = common::run(
        &["--headless", "--replay", bundle.to_str().unwrap()],
        b"",
        &[],
    );
    let report = common::report(&out);
    let findings = report["findings"].as_array().unwrap();
    let realm = findings
        .iter()
        .find(|f| f["check"] == "cluster.pulls" && f["class"] == "token_realm_unreachable")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(realm["target"]["name"], "k8s-n1");
    let offer = findings.iter().find(|f| f["class"] == "none").unwrap();
    assert_eq!(
        offer["subject"]["nodes"],
        serde_json::json!(["k8s-n1", "k8s-n2", "k8s-n3"])
    );
    let hostile = ClusterSource::Ssh {
        host: pulldoctor::inventory::Inventory::parse(
            "[[host]]\nname = \"m\"\nroles = [\"control-plane\"]\n",
            "-",
        )
        .unwrap()
        .hosts[0]
            .clone(),
        namespace: Some("x; rm -rf /".into()),
    };
    let cmd = shell_command(&hostile.kubectl_argvs()[0]);
    assert!(cmd.contains("-n 'x; rm -rf /'"), "{cmd}");
}
