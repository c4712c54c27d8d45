#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs every test.
# As root it installs the lab's Debian packages (tests/lab/lab.sh install) so the end-to-end tests
# run against real containerd, registry, sshd and iptables; without root those tests are skipped
# and say so.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  bash tests/lab/lab.sh install
  # the real Docker 20.10 daemon for the docker.api-skew tests (tests/ci_checks.rs)
  if ! dpkg-query -W -f='${Status}' docker.io 2>/dev/null | grep -q 'install ok installed'; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  fi
  # the dashboard's end-to-end test drives the real binary in tmux
  command -v tmux >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends tmux \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends tmux; }
else
  echo "note: not root, so the lab and sshd tests (network namespaces, sshd) will be SKIPPED"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked 2>&1 | tee "$log" || status=$?
# every dependency's licence, bans and source (deny.toml); the advisory database is on github.com,
# which these machines cannot reach: `cargo deny check advisories` runs where it can (README)
# a debug build of the tool: its release profile (LTO, one codegen unit) takes many minutes on two
# cores, and checking licences needs no speed
command -v cargo-deny >/dev/null 2>&1 || cargo install cargo-deny --locked --debug
cargo deny --locked check licenses bans sources || status=$?
# one closing line for the whole suite (cargo prints one per test binary)
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
