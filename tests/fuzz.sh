#!/usr/bin/env bash
# Fuzz every parser of outside input: builds the libFuzzer targets in fuzz/ (nightly, cargo-fuzz)
# and runs them one after another, SECONDS each (default 600), seeded from tests/corpus,
# tests/fixtures and assets. Prints one line per target: executions, crashes, and the artifact a
# crash left (reproduce with `cargo +nightly fuzz run TARGET ARTIFACT` in fuzz/).
#
#   tests/fuzz.sh [SECONDS] [TARGET...]
#
# One target at a time on purpose: libFuzzer takes a core, and CI machines are small. Every crash
# found becomes a unit test next to the parser it broke.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-600}
shift || true
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cd fuzz
# No sanitizer: the crate forbids unsafe code, so what a fuzzer can find is a panic, an overflow
# (debug assertions are on), unbounded time (-timeout) or memory (-rss_limit_mb).
build_flags=(--sanitizer none --debug-assertions)
cargo +nightly fuzz build "${build_flags[@]}" || exit 2

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)

# Seeds: files of the right kind from the repository, and a few hand-written ones where the
# repository has none (an HTTP answer, a header, a token, a pull secret).
seeds() {
  local t=$1 dir=corpus/$1
  mkdir -p "$dir"
  case $t in
    text_lines|journal_events|job_log)
      find "$root/tests/corpus" "$root/tests/fixtures/kube" -name '*.log' -o -name '*.txt' | head -80
      echo "$root/assets/incident.log" ;;
    gitlab_ci) find "$root/tests/fixtures/gitlab_ci" -name '*.yml' ;;
    containerd|node_gather) find "$root/tests/fixtures/node_registry" -name '*.txt' ;;
    iptables|hop_gather) find "$root/tests/fixtures/hops" -name '*.gather' -o -name 'probes.txt' ;;
    kube) find "$root/tests/fixtures/kube" -type f ;;
    inventory) echo "$root/assets/pulldoctor.example.toml" ;;
    bundle) echo "$root/assets/demo.bundle.json" ;;
  esac | while read -r f; do cp -n "$f" "$dir/seed-$(basename "$(dirname "$f")")-$(basename "$f")" 2>/dev/null; done
  case $t in
    www_auth)
      printf '%s' 'Bearer realm="http://10.0.0.1/jwt/auth",service="container_registry",scope="repository:a/b:pull,push"' >"$dir/seed-bearer"
      printf '%s' 'Basic realm="GitLab", Bearer realm="https://r/token",error="insufficient_scope"' >"$dir/seed-two" ;;
    jwt)
      printf '%s' 'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJyb290IiwiZXhwIjoxNzAwMDAwMDAwLCJhY2Nlc3MiOlt7InR5cGUiOiJyZXBvc2l0b3J5IiwibmFtZSI6ImEvYiIsImFjdGlvbnMiOlsicHVsbCJdfV19.c2ln' >"$dir/seed-token" ;;
    dockercfg)
      printf '%s' '{"auths":{"r:5050":{"username":"u","password":"p","auth":"dTpw"}}}' >"$dir/seed-config"
      printf '%s' '{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/dockerconfigjson","data":{".dockerconfigjson":"eyJhdXRocyI6e319"}}' >"$dir/seed-secret" ;;
    image_ref)
      printf '%s' '172.100.100.9:5050/root/gition/backend:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef' >"$dir/seed-ref" ;;
    http_response)
      printf 'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="http://r/jwt/auth",service="s"\r\nLink: <http://g/api/v4/x?page=2>; rel="next"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"errors":[]}\r\n0\r\n\r\n' >"$dir/seed-401"
      printf 'HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{"ApiVersion":"1.43","MinAPIVersion":"1.12"}' >"$dir/seed-version" ;;
    bundle)
      printf '%s' '{"format":"pulldoctor-bundle","version":1,"tool":"t","recorded_at":"2026-01-01T00:00:00Z","probes":[]}' >"$dir/seed-empty" ;;
  esac
}

results=()
crashed=0
for t in "${targets[@]}"; do
  seeds "$t"
  mkdir -p "artifacts/$t"
  before=$(ls "artifacts/$t" | wc -l)
  mkdir -p logs
  log=logs/$t.log
  cargo +nightly fuzz run "${build_flags[@]}" "$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  execs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log" | tail -1)
  after=$(ls "artifacts/$t" | wc -l)
  crashes=$((after - before))
  [ "$rc" = 0 ] || [ "$crashes" -gt 0 ] || crashes=1  # a failure that left no artifact still counts
  line="$t: ${execs:-?} execs in ${secs}s, $crashes crash(es)"
  if [ "$crashes" -gt 0 ]; then
    crashed=1
    line+=" -> fuzz/artifacts/$t/$(ls -t "artifacts/$t" | head -1)"
    grep -m3 -E 'panicked|ERROR|deadly|timeout|out-of-memory' "$log" | sed 's/^/    /'
  fi
  echo "$line"
  results+=("$line")
done
echo "== fuzz summary (${secs}s per target)"
printf '%s\n' "${results[@]}"
exit "$crashed"
