#!/usr/bin/env bash
# Re-record the demo bundle (assets/demo.bundle.json): the lab with the incident's faults, pulled
# for real so the node's containerd logs them, then one headless run from the GitLab VM with the
# job page and job log the engineer had (tests/lab/demo/), recorded with secrets redacted.
# Root and the lab's packages needed (tests/lab/lab.sh install). Usage: tests/lab/record-demo.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${PULLDOCTOR_BIN:-target/release/pulldoctor}
[ -x "$bin" ] || cargo build --release --locked
lab="bash tests/lab/lab.sh"
export PD_LAB_PREFIX=pdd- PD_LAB_DIR
PD_LAB_DIR=$(mktemp -d /tmp/pulldoctor-demo.XXXXXX)
trap '$lab down >/dev/null 2>&1 || true; rm -rf "$PD_LAB_DIR"' EXIT
pass=demo-deploy-pass
$lab up --password "$pass" >&2
pull() { $lab pull "$1" --user gition-deploy --pass "$pass" >/dev/null 2>&1 || true; }
# fault 5: a Deployment asks for an image CI never pushed (the registry has backend, frontend)
pull api
# fault 4: the token realm's port is not forwarded to the nodes (rejected on the Linux host)
$lab fault reject-host-unreachable linuxhost 80 >&2
pull backend
# fault 3: no hosts.toml, so containerd speaks HTTPS to the plain-HTTP registry
$lab fault no-hosts-toml >&2
pull backend
# faults 1 and 2 are on the CI side: the job page (stuck on tags) and the job log (API skew)
demo="$PD_LAB_DIR/demo"
mkdir -p "$demo"
cp tests/lab/demo/* "$demo/"
cp tests/lab/demo/gitlab-ci.yml "$demo/.gitlab-ci.yml"
s=$PD_LAB_DIR
cat >"$demo/pulldoctor.toml" <<TOML
# the lab's copy of the incident's network (tests/lab/README.md)
[registry]
address = "10.88.1.1:5050"

[ssh]
config = "$s/ssh/config"
known_hosts = ["$s/ssh/known_hosts"]
connect_timeout = 5

[[host]]
name = "k8snode"
roles = ["node"]
log_files = ["$s/k8snode/containerd.log"]

[[host]]
name = "bastion"
roles = ["hop"]
address = "10.88.1.1"

[[host]]
name = "linuxhost"
roles = ["hop"]
address = "10.88.2.2"

[[host]]
name = "gitlabvm"
roles = ["gitlab"]
address = "10.88.3.2"

[[route]]
name = "registry"
from = ["k8snode"]
hops = ["bastion", "linuxhost", "gitlabvm"]
ports = [5050, 80]
realm_port = 80
TOML
out=$(pwd)/assets/demo.bundle.json
$lab exec gitlabvm "$(pwd)/$bin" --headless --config "$demo/pulldoctor.toml" \
  --ci-file "$demo/.gitlab-ci.yml" --stuck-banner "$demo/stuck-banner.txt" \
  --job-log "$demo/build-backend.log" --record "$out" -o "$PD_LAB_DIR/report.json" || true
cp "$PD_LAB_DIR/report.json" assets/demo.report.json
echo "recorded $out ($(wc -c <"$out") bytes); its report: assets/demo.report.json" >&2
