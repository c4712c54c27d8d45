#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs every test.
# As root it installs the lab's Debian packages (tests/lab/lab.sh install) so the end-to-end test
# runs against real containerd, registry, sshd and iptables; without root that test is skipped and
# says so.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  bash tests/lab/lab.sh install
else
  echo "note: not root, so the lab end-to-end test (network namespaces) will be SKIPPED"
fi
cargo test --locked
