#!/usr/bin/env bash
# Record real containerd journal lines for tests/corpus/lab/ from a lab built by lab.sh.
#   tests/lab/record-corpus.sh [--with-timeouts] [OUT_DIR]
# Builds a fresh lab (own state dir), injects each fault, does a CRI pull from the node, saves the
# containerd log lines of that pull verbatim to OUT_DIR/<situation>.log and the CRI error
# (as crictl/kubelet would get it) to OUT_DIR/<situation>.cri-error.txt, heals, and tears down.
# --with-timeouts also records ip-forward-off on the bastion (a DROP-like fault: about 60 s).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WITH_TIMEOUTS=0
if [ "${1:-}" = --with-timeouts ]; then WITH_TIMEOUTS=1; shift; fi
OUT=${1:-$HERE/../corpus/lab}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PD_LAB_DIR=${PD_LAB_DIR:-/tmp/pd-lab-record}
LAB="$HERE/lab.sh"

"$LAB" down >/dev/null 2>&1 || true
trap '"$LAB" down >/dev/null 2>&1 || true' EXIT
"$LAB" up
# shellcheck disable=SC1091
. "$PD_LAB_DIR/lab.env"
DEPLOY="--user gition-deploy --pass $DEPLOY_PASS"

"$LAB" journal --startup >"$OUT/startup.log"
printf 'file\tfault\tcommand\tclass\n' >"$OUT/index.tsv"

# record NAME CLASS "FAULT ARGS" PULL-ARGS...   (FAULT "-" = none)
record() {
  local name=$1 class=$2 fault=$3; shift 3
  local shown=("$@") i
  for i in "${!shown[@]}"; do [ "${shown[$i]}" = "$DEPLOY_PASS" ] && shown[$i]='$DEPLOY_PASS'; done
  for i in "${!shown[@]}"; do [ "${shown[$i]}" = "$OUTSIDER_PASS" ] && shown[$i]='$OUTSIDER_PASS'; done
  # shellcheck disable=SC2086
  [ "$fault" = - ] || "$LAB" fault $fault
  local rc=0
  "$LAB" pull "$@" >"$OUT/$name.out" 2>"$OUT/$name.cri-error.txt" || rc=$?
  "$LAB" journal --last >"$OUT/$name.log"
  if [ $rc -eq 0 ]; then
    rm -f "$OUT/$name.cri-error.txt"
  else
    grep '^rpc error' "$OUT/$name.cri-error.txt" >"$OUT/$name.cri-error.txt.new" || true
    mv "$OUT/$name.cri-error.txt.new" "$OUT/$name.cri-error.txt"
  fi
  rm -f "$OUT/$name.out"
  # shellcheck disable=SC2086
  [ "$fault" = - ] || "$LAB" heal $fault
  printf '%s\t%s\t%s\t%s\n' "$name.log" "$fault" "lab.sh pull ${shown[*]}" "$class" >>"$OUT/index.tsv"
  echo "== $name ($class, rc=$rc): $(cat "$OUT/$name.cri-error.txt" 2>/dev/null | cut -c1-400)"
}

record healthy none - backend $DEPLOY
record no-hosts-toml http_vs_https no-hosts-toml backend $DEPLOY
record no-resolve http_vs_https no-resolve backend $DEPLOY
record dir-without-port http_vs_https dir-without-port backend $DEPLOY
record server-only http_vs_https server-only backend $DEPLOY
record config-path-shadowed http_vs_https config-path-shadowed backend $DEPLOY
# the containerd restart after the config change shows the effective CRI registry config
"$LAB" fault v2-key-on-v1 >/dev/null 2>&1
grep -F 'Start cri plugin with config' "$PD_LAB_DIR/k8snode/containerd.log" | tail -1 >"$OUT/v2-key-on-v1.cri-config.log"
"$LAB" heal v2-key-on-v1 >/dev/null 2>&1
record v2-key-on-v1 http_vs_https v2-key-on-v1 backend $DEPLOY
record realm-unreachable token_realm_unreachable realm-unreachable backend $DEPLOY
record realm-unreachable-anonymous token_realm_unreachable realm-unreachable backend
record realm-path-refused token_realm_unreachable "dnat-removed bastion 80" backend $DEPLOY
record wrong-password auth_denied - backend --user gition-deploy --pass wrong-password
record user-without-rights auth_denied - backend --user outsider --pass "$OUTSIDER_PASS"
record anonymous-private auth_denied - backend
record missing-tag image_not_found - backend:v9 $DEPLOY
record misnamed-repository image_not_found - api $DEPLOY
record reject-host-unreachable other_network "reject-host-unreachable bastion 5050" backend $DEPLOY
record dnat-removed other_network "dnat-removed bastion 5050" backend $DEPLOY
record registry-stopped other_network registry-stopped backend $DEPLOY
if [ $WITH_TIMEOUTS = 1 ]; then
  record ip-forward-off other_network "ip-forward-off bastion" backend $DEPLOY
fi
# healthy again at the end: the lab is back to normal after all the heals
"$LAB" pull backend $DEPLOY >/dev/null
echo "recorded into $OUT"
