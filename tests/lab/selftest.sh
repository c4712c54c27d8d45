#!/usr/bin/env bash
# Prove the lab works: install; up; every fault + pull + heal; down; nothing left behind.
#   tests/lab/selftest.sh [--full-timeouts]
# DROP-like faults (forward-removed, masquerade-removed on the bastion, ip-forward-off) are pulled
# with a 5 s CRI deadline (expect DeadlineExceeded); --full-timeouts waits for containerd's own
# dial timeouts instead (about 60 s each, "i/o timeout").
# Ends with the line "N passed, N failed"; exit status 0 only if nothing failed.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB="$HERE/lab.sh"
export PD_LAB_DIR=${PD_LAB_DIR:-/tmp/pd-lab-selftest}
FULL=0; [ "${1:-}" = --full-timeouts ] && FULL=1
PASS=0; FAIL=0
ok()   { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad()  { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }
now()  { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

"$LAB" install || { echo "install failed"; echo "0 passed, 1 failed"; exit 1; }
"$LAB" down >/dev/null 2>&1
t0=$(now)
UPLOG=$(mktemp)
if "$LAB" up >"$UPLOG" 2>&1; then ok "up ($(secs "$t0" "$(now)") s)"; rm -f "$UPLOG"
else bad "up"; cat "$UPLOG"; rm -f "$UPLOG"; echo "$PASS passed, $FAIL failed"; exit 1; fi
trap '"$LAB" down >/dev/null 2>&1' EXIT
# shellcheck disable=SC1091
. "$PD_LAB_DIR/lab.env"

# expect_pull DESCRIPTION EXPECTED-SUBSTRING|OK PULL-ARGS...
expect_pull() {
  local what=$1 want=$2 out rc=0; shift 2
  out=$("$LAB" pull "$@" 2>&1) || rc=$?
  if [ "$want" = OK ]; then
    if [ $rc -eq 0 ]; then ok "$what: pull works"; else bad "$what: expected success, got: $out"; fi
  elif [ $rc -ne 0 ] && grep -qF -- "$want" <<<"$out"; then ok "$what: $want"
  else bad "$what: expected '$want', got (rc=$rc): $out"; fi
}
D=(--user gition-deploy --pass "$DEPLOY_PASS")
T=(); [ $FULL = 1 ] || T=(--timeout 5)
TO="i/o timeout"; [ $FULL = 1 ] || TO="code = DeadlineExceeded"

# faulted FAULT-ARGS -- EXPECTED PULL-ARGS...
faulted() {
  local f=() ; while [ "$1" != -- ]; do f+=("$1"); shift; done; shift
  if ! "$LAB" fault "${f[@]}" >/dev/null 2>&1; then bad "fault ${f[*]}: could not inject"; return; fi
  expect_pull "fault ${f[*]}" "$@"
  if "$LAB" heal "${f[@]}" >/dev/null 2>&1; then expect_pull "healed ${f[*]}" OK backend "${D[@]}"
  else bad "heal ${f[*]}"; fi
}

HTTPS='http: server gave HTTP response to HTTPS client'
expect_pull healthy OK backend "${D[@]}"
expect_pull healthy-frontend OK frontend "${D[@]}"
expect_pull wrong-password 'failed to fetch oauth token: unexpected status: 401 Unauthorized' backend --user gition-deploy --pass nope
expect_pull user-without-rights 'insufficient_scope: authorization failed' backend --user outsider --pass "$OUTSIDER_PASS"
expect_pull anonymous 'failed to fetch anonymous token: unexpected status: 403 Forbidden' backend
expect_pull missing-tag 'code = NotFound' backend:v9 "${D[@]}"
expect_pull misnamed-repository 'root/gition/api:latest: not found' api "${D[@]}"

for f in no-hosts-toml no-resolve dir-without-port server-only config-path-shadowed v2-key-on-v1; do
  faulted "$f" -- "$HTTPS" backend "${D[@]}"
done
faulted realm-unreachable -- 'failed to fetch oauth token: Post "http://10.88.3.2/jwt/auth": dial tcp 10.88.3.2:80: connect: no route to host' backend "${D[@]}"
faulted realm-unreachable -- 'failed to fetch anonymous token: Get "http://10.88.3.2/jwt/auth?' backend
faulted registry-stopped -- 'dial tcp 10.88.1.1:5050: connect: connection refused' backend "${D[@]}"
faulted token-server-stopped -- 'Post "http://10.88.1.1/jwt/auth": dial tcp 10.88.1.1:80: connect: connection refused' backend "${D[@]}"
for hop in bastion linuxhost; do
  faulted reject-host-unreachable "$hop" 5050 -- 'dial tcp 10.88.1.1:5050: connect: no route to host' backend "${D[@]}"
  faulted reject-host-unreachable "$hop" 80 -- 'dial tcp 10.88.1.1:80: connect: no route to host' backend "${D[@]}"
  faulted dnat-removed "$hop" 5050 -- 'dial tcp 10.88.1.1:5050: connect: connection refused' backend "${D[@]}"
  faulted dnat-removed "$hop" 80 -- 'dial tcp 10.88.1.1:80: connect: connection refused' backend "${D[@]}"
done
faulted forward-removed bastion 5050 -- "$TO" backend "${D[@]}" "${T[@]}"
faulted forward-removed linuxhost 80 -- "$TO" backend "${D[@]}" "${T[@]}"
faulted masquerade-removed bastion 5050 -- "$TO" backend "${D[@]}" "${T[@]}"
faulted ip-forward-off linuxhost -- "$TO" backend "${D[@]}" "${T[@]}"
# not a fault: the GitLab VM routes back through the Linux host, so its MASQUERADE is not needed
if "$LAB" fault masquerade-removed linuxhost 5050 >/dev/null 2>&1; then
  expect_pull "masquerade-removed linuxhost 5050 (harmless)" OK backend "${D[@]}"
  "$LAB" heal masquerade-removed linuxhost 5050 >/dev/null 2>&1
fi
# several faults at once, then heal all
"$LAB" fault no-hosts-toml >/dev/null 2>&1; "$LAB" fault dnat-removed bastion 80 >/dev/null 2>&1
"$LAB" fault realm-unreachable >/dev/null 2>&1
[ "$("$LAB" faults | wc -l)" = 3 ] && ok "three faults listed" || bad "faults list: $("$LAB" faults)"
"$LAB" heal all >/dev/null 2>&1
[ -z "$("$LAB" faults)" ] && ok "heal all clears the list" || bad "faults left: $("$LAB" faults)"
expect_pull "after heal all" OK backend "${D[@]}"

# ssh into each host (from gitlabvm, through the hops); the node sees its own /etc/containerd
for h in gitlabvm linuxhost bastion k8snode; do
  got=$("$LAB" ssh "$h" hostname 2>&1)
  [ "$got" = "$h" ] && ok "ssh $h" || bad "ssh $h: $got"
done
got=$("$LAB" ssh k8snode cat "/etc/containerd/certs.d/10.88.1.1:5050/hosts.toml" 2>&1)
grep -qF 'server = "http://10.88.1.1:5050"' <<<"$got" && ok "node hosts.toml over ssh" || bad "node hosts.toml over ssh: $got"
[ ! -e "/etc/containerd/certs.d/10.88.1.1:5050" ] && ok "machine's /etc/containerd untouched" || bad "/etc/containerd/certs.d/10.88.1.1:5050 exists on the machine"
got=$("$LAB" cri-status 2>&1)
grep -q '"configPath": "/etc/containerd/certs.d"' <<<"$got" && ok "CRI status shows configPath" || bad "cri-status: $(head -c 300 <<<"$got")"

# down, and nothing left
trap - EXIT
t0=$(now)
if "$LAB" down >/dev/null 2>&1; then ok "down ($(secs "$t0" "$(now)") s)"; else bad "down"; fi
"$LAB" down >/dev/null 2>&1 && ok "down again (idempotent)" || bad "second down"
[ -z "$(ip netns list | grep -E "^${PD_LAB_PREFIX:-pd-}" || true)" ] && ok "no namespaces left" || bad "namespaces left: $(ip netns list)"
[ ! -e "$PD_LAB_DIR" ] && ok "state dir removed" || bad "state dir left: $PD_LAB_DIR"
grep -qF "$PD_LAB_DIR" /proc/self/mountinfo && bad "mounts left: $(grep -F "$PD_LAB_DIR" /proc/self/mountinfo)" || ok "no mounts left"
left=""
mynet=$(readlink /proc/self/ns/net)
for p in /proc/[0-9]*; do
  n=$(readlink "$p/ns/net" 2>/dev/null) || continue
  [ "$n" = "$mynet" ] && continue
  left+=" $(basename "$p"):$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-60)"
done
[ -z "$left" ] && ok "no processes left in other network namespaces" || bad "processes left:$left"
pgrep -f "$PD_LAB_DIR" >/dev/null && bad "processes mentioning $PD_LAB_DIR: $(pgrep -af "$PD_LAB_DIR")" || ok "no processes mention the state dir"

echo "$PASS passed, $FAIL failed"
[ $FAIL -eq 0 ]
