#!/usr/bin/env bash
# pulldoctor test lab: the incident's pull path in network namespaces on one Debian 12 machine.
#
#   k8snode 10.88.1.2 ── 10.88.1.1 bastion 10.88.2.1 ── 10.88.2.2 linuxhost 10.88.3.1 ── 10.88.3.2 gitlabvm
#   (PD_LAB_NODES=2..4: k8snode2..4 on links of their own to bastion, 10.88.4/5/6.0/24)
#
# Run as root. See tests/lab/README.md, or `lab.sh help`.
set -euo pipefail

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$SELF_DIR/$(basename "${BASH_SOURCE[0]}")"
LABTOOL="$SELF_DIR/labtool.py"
PY=/usr/bin/python3

PREFIX=${PD_LAB_PREFIX:-pd-}
STATE=${PD_LAB_DIR:-/tmp/pd-lab}
# how many nodes `up` builds: 1 (k8snode) to 4 (also k8snode2..4, each on its own link to
# bastion); opt-in, so every other user of the lab keeps the single node
NODE_COUNT=${PD_LAB_NODES:-${LAB_NODES:-1}}
# the node that node faults, pulls and CRI calls act on (`--node NAME`)
NODE=${PD_LAB_NODE:-k8snode}
# every node the lab can have, in the order `up` builds them, and each one's /24 link to
# bastion (the node is .2 there, bastion .1); every node dials 10.88.1.1 for the registry
ALL_NODES=(k8snode k8snode2 k8snode3 k8snode4)
declare -A NODE_NET=([k8snode]=10.88.1 [k8snode2]=10.88.4 [k8snode3]=10.88.5 [k8snode4]=10.88.6)
set_hosts() {
  case "$NODE_COUNT" in
    1|2|3|4) NODES=("${ALL_NODES[@]:0:$NODE_COUNT}") ;;
    *) die "PD_LAB_NODES must be 1, 2, 3 or 4 (got $NODE_COUNT)" ;;
  esac
  HOSTS=("${NODES[@]}" bastion linuxhost gitlabvm)
}

# addresses
BASTION_IP=${NODE_NET[k8snode]}.1   # the address the nodes use for everything (registry :5050, auth :80)
BASTION_IP2=10.88.2.1
HOST_IP=10.88.2.2
HOST_IP2=10.88.3.1
GITLAB_IP=10.88.3.2
REGISTRY="$BASTION_IP:5050"
DEFAULT_REALM="http://$BASTION_IP/jwt/auth"       # GitLab: external_url + /jwt/auth
UNREACHABLE_REALM="http://$GITLAB_IP/jwt/auth"    # the incident's fault 4: GitLab's own address
PORTS=(5050 80)

PKGS=(docker-registry containerd runc openssh-server openssh-client iptables skopeo apache2-utils
      openssl iproute2 python3 python3-grpcio curl procps util-linux ca-certificates)

log()  { printf '[lab] %s\n' "$*" >&2; }
die()  { printf '[lab] error: %s\n' "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "run as root"; }

usage() {
  cat <<'EOF'
usage: lab.sh [--dir STATE_DIR] [--node NODE] COMMAND [ARGS]
  (--node k8snode2 (..k8snode4), or PD_LAB_NODE: node faults, pull, rmi, images, cri-status,
   journal and restart-containerd act on that node; PD_LAB_NODES=2, 3 or 4 makes `up` build
   k8snode2, k8snode3 (10.88.5.2), k8snode4 (10.88.6.2), each on its own link to bastion)
  install                       apt-get install what the lab needs (quick when already installed)
  up [--realm URL] [--password P]   build the healthy lab (state dir default /tmp/pd-lab)
  down                          tear everything down (idempotent; works after a half-failed up)
  status                        namespaces, processes, active faults
  env                           shell variables describing the lab (credentials, paths, refs)
  fault NAME [ARGS]             inject a fault (see below)
  heal NAME [ARGS] | heal all   undo a fault / every active fault
  faults                        list active faults
  pull REF [--user U --pass P] [--timeout S]   CRI PullImage on the node's containerd
                                REF may be short: backend, frontend, backend:v9, api ...
  rmi REF | images | cri-status   more CRI calls on the node's containerd
  journal [--last|--startup|--all]  the node containerd's log (--last: lines of the last pull)
  restart-containerd            stop the node's containerd (its pid file only) and start it again;
                                exit 0 once CRI answers (the node's $STATE/NODE/restart-containerd
                                script, the inventory's containerd_restart, runs this)
  exec NS CMD...                run CMD in a lab host: k8snode[2-4] | bastion | linuxhost | gitlabvm
  ssh HOST [CMD...]             ssh as root from gitlabvm (ProxyJump via linuxhost, bastion)

faults (HOP = bastion | linuxhost, PORT = 5050 | 80; with --node k8snodeN the bastion rules
of that node's own link):
  forward-removed HOP PORT          FORWARD accept deleted (policy DROP: timeouts)
  dnat-removed HOP PORT             PREROUTING DNAT deleted (connection refused)
  masquerade-removed HOP PORT       POSTROUTING MASQUERADE deleted (timeouts)
  reject-host-unreachable HOP PORT  FORWARD accept replaced by REJECT icmp-host-unreachable
  ip-forward-off HOP                net.ipv4.ip_forward=0 (timeouts)
  no-hosts-toml | no-resolve | dir-without-port | server-only      (node hosts.toml)
  config-path-shadowed | v2-key-on-v1 | no-config-path              (node config.toml, restarts containerd)
  realm-unreachable [URL]           registry token realm -> URL (default http://10.88.3.2/jwt/auth)
  registry-stopped | token-server-stopped
EOF
}

# ------------------------------------------------------------------------------------------ helpers

since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

abs_dir() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }

load_env() {
  [ -f "$STATE/lab.env" ] || die "no lab in $STATE (run: lab.sh up)"
  # shellcheck disable=SC1091
  . "$STATE/lab.env"
  NODE_COUNT=${PD_LAB_NODES:-1}
  set_hosts
  node_known "$NODE" || die "no node $NODE in this lab (nodes: ${NODES[*]})"
}

node_known() { local n; for n in "${NODES[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1; }
# a name the lab could give a node (whether this lab built it or not)
node_name() { [ -n "$1" ] && [ -n "${NODE_NET[$1]:-}" ]; }
# `k8snode|k8snode2|...|bastion|linuxhost|gitlabvm`, for matching namespace and link names
host_names_re() { local IFS='|'; printf '%s' "${ALL_NODES[*]}|bastion|linuxhost|gitlabvm"; }

ns() { printf '%s%s' "$PREFIX" "$1"; }

host_name() { # accept k8snode or pd-k8snode
  local h=${1#"$PREFIX"}
  if node_name "$h"; then printf '%s' "$h"; return; fi
  case "$h" in bastion|linuxhost|gitlabvm) printf '%s' "$h" ;; *) die "unknown host: $1" ;; esac
}

nsx() { local h=$1; shift; ip netns exec "$(ns "$h")" "$@"; }

holder_pid() { cat "$STATE/pids/holder-$1.pid" 2>/dev/null || true; }

# run in a lab host: its network namespace plus its own mount and UTS namespaces (held open by a
# `sleep` process); the node's mount namespace has a private /etc/containerd and /etc/docker
in_host() {
  local h=$1 pid; shift
  pid=$(holder_pid "$h")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || die "lab host $h is not running (no holder process)"
  nsenter -t "$pid" -m -u -n -- "$@"
}

start_holder() { # HOST [SRC DST]...  (bind mounts for the host's mount namespace)
  local h=$1; shift
  local pidf="$STATE/pids/holder-$h.pid"
  setsid ip netns exec "$(ns "$h")" unshare -m -u --propagation private /bin/sh -c '
      h=$1 pidf=$2; shift 2
      hostname "$h" || exit 1
      while [ $# -gt 1 ]; do mount --bind "$1" "$2" || exit 1; shift 2; done
      echo $$ > "$pidf" && exec sleep infinity' \
    holder "$h" "$pidf" "$@" </dev/null >>"$STATE/$h/holder.log" 2>&1 &
  wait_for 100 "holder of $h" test -s "$pidf"
}

# start NAME in host H, detached, stdout+stderr to LOGFILE, pid to $STATE/pids/NAME.pid
spawn() {
  local name=$1 h=$2 logf=$3; shift 3
  local pidf="$STATE/pids/$name.pid"
  rm -f "$pidf"
  local hp; hp=$(holder_pid "$h")
  [ -n "$hp" ] || die "lab host $h is not running (no holder process)"
  setsid nsenter -t "$hp" -m -u -n -- /bin/sh -c 'echo $$ > "$0"; exec "$@"' "$pidf" "$@" \
    </dev/null >>"$logf" 2>&1 &
  local i
  for i in $(seq 1 100); do [ -s "$pidf" ] && return 0; sleep 0.05; done
  die "could not start $name"
}

# a pid from a pid file is only ours if it lives in a network namespace other than this one's
# (every lab process does): a stale pid file must never make us kill a reused pid
our_pid() {
  local n; n=$(readlink "/proc/$1/ns/net" 2>/dev/null) || return 1
  [ "$n" != "$(readlink /proc/self/ns/net)" ]
}

# running, not a zombie waiting for init to reap it
alive() { local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ]; }

stop_proc() { # stop NAME (pid file), wait for it to exit
  local pidf="$STATE/pids/$1.pid" pid i
  [ -s "$pidf" ] || return 0
  pid=$(cat "$pidf")
  if our_pid "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pidf"
}

wait_for() { # wait_for TRIES DESCRIPTION CMD... (0.1 s between tries)
  local n=$1 what=$2 i; shift 2
  for i in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "timed out waiting for $what"
}

# ------------------------------------------------------------------------------------------ install

cmd_install() {
  need_root
  local missing=() p
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then log "all packages installed"; return 0; fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef \
    -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
  log "installed"
}

check_tools() {
  local t
  for t in ip iptables nsenter unshare setsid docker-registry containerd runc sshd ssh ssh-keygen htpasswd openssl curl; do
    command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || die "$t missing: run lab.sh install"
  done
  "$PY" -c 'import grpc' 2>/dev/null || die "python3-grpcio missing: run lab.sh install"
}

# ------------------------------------------------------------------------------------------ network

hop_ifaces() { # HOP -> IN OUT SELF NEXT (bastion's IN is the link of the node $NODE)
  case "$1" in
    bastion)   echo "pd-$NODE pd-linuxhost $BASTION_IP $HOST_IP" ;;
    linuxhost) echo "pd-bastion pd-gitlabvm $HOST_IP $GITLAB_IP" ;;
    *) die "HOP must be bastion or linuxhost (got $1)" ;;
  esac
}

check_port() { case "$1" in 5050|80) ;; *) die "PORT must be 5050 or 80 (got $1)" ;; esac; }

rule_dnat()  { local i o s n; read -r i o s n < <(hop_ifaces "$1"); echo "PREROUTING -i $i -d $s -p tcp -m tcp --dport $2 -j DNAT --to-destination $n:$2"; }
rule_fwd()   { local i o s n; read -r i o s n < <(hop_ifaces "$1"); echo "FORWARD -i $i -o $o -d $n -p tcp -m tcp --dport $2 -j ACCEPT"; }
rule_rej()   { local i o s n; read -r i o s n < <(hop_ifaces "$1"); echo "FORWARD -i $i -o $o -d $n -p tcp -m tcp --dport $2 -j REJECT --reject-with icmp-host-unreachable"; }
rule_masq()  { local i o s n; read -r i o s n < <(hop_ifaces "$1"); echo "POSTROUTING -o $o -d $n -p tcp -m tcp --dport $2 -j MASQUERADE"; }

ipt() { # ipt HOP TABLE ACTION RULE...
  local h=$1 t=$2 a=$3; shift 3
  # shellcheck disable=SC2086
  nsx "$h" iptables -w -t "$t" "$a" $*
}
ipt_has() { ipt "$1" "$2" -C "$3" >/dev/null 2>&1; }
ipt_add() { ipt_has "$1" "$2" "$3" || ipt "$1" "$2" -A "$3"; }
ipt_del() { while ipt_has "$1" "$2" "$3"; do ipt "$1" "$2" -D "$3"; done; }

setup_hop() {
  nsx "$1" sysctl -qw net.ipv4.ip_forward=1
  setup_hop_rules "$1"
}

setup_hop_rules() {
  local h=$1 p node=$NODE nodes=(k8snode)
  nsx "$h" iptables -w -P FORWARD DROP
  nsx "$h" iptables -w -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
  # on bastion every node comes in on its own link and dials the same 10.88.1.1: a DNAT and a
  # FORWARD per link; the MASQUERADE matches the way out, so k8snode's serves them all
  if [ "$h" = bastion ]; then nodes=("${NODES[@]}"); fi
  for NODE in "${nodes[@]}"; do
    for p in "${PORTS[@]}"; do
      ipt "$h" nat -A "$(rule_dnat "$h" "$p")"
      ipt "$h" filter -A "$(rule_fwd "$h" "$p")"
      if [ "$NODE" = k8snode ]; then ipt "$h" nat -A "$(rule_masq "$h" "$p")"; fi
    done
  done
  NODE=$node
}

ipt_faults_re='^(forward-removed|dnat-removed|masquerade-removed|reject-host-unreachable)$'

apply_ipt_fault() { # NAME HOP PORT
  case "$1" in
    forward-removed)    ipt_del "$2" filter "$(rule_fwd "$2" "$3")" ;;
    dnat-removed)       ipt_del "$2" nat "$(rule_dnat "$2" "$3")" ;;
    masquerade-removed) ipt_del "$2" nat "$(rule_masq "$2" "$3")" ;;
    reject-host-unreachable)
      ipt_del "$2" filter "$(rule_fwd "$2" "$3")"
      ipt_add "$2" filter "$(rule_rej "$2" "$3")" ;;
  esac
}

# rebuild a hop's rules in their original order, then re-apply its other active faults
reset_hop_rules() {
  local h=$1 f args
  nsx "$h" iptables -w -F FORWARD
  nsx "$h" iptables -w -t nat -F PREROUTING
  nsx "$h" iptables -w -t nat -F POSTROUTING
  setup_hop_rules "$h"
  local node=$NODE
  for f in "$STATE"/faults/*; do
    [ -e "$f" ] || continue
    read -r -a args <"$f"
    case "$f" in *@*) NODE=${f##*@} ;; *) NODE=k8snode ;; esac
    if [[ ${args[0]} =~ $ipt_faults_re ]] && [ "${args[1]}" = "$h" ]; then apply_ipt_fault "${args[@]}"; fi
  done
  NODE=$node
}

net_up() {
  local h
  for h in "${HOSTS[@]}"; do
    ip netns add "$(ns "$h")"
    nsx "$h" ip link set lo up
    nsx "$h" sysctl -qw net.ipv4.icmp_ratelimit=0
  done
  # k8snode's link first, then the hops', then the other nodes' (the interfaces keep the
  # indexes they always had)
  node_link k8snode
  ip link add pd-linuxhost netns "$(ns bastion)" type veth peer name pd-bastion netns "$(ns linuxhost)"
  ip link add pd-gitlabvm netns "$(ns linuxhost)" type veth peer name pd-linuxhost netns "$(ns gitlabvm)"
  nsx bastion   ip addr add "$BASTION_IP2/24" dev pd-linuxhost
  nsx linuxhost ip addr add "$HOST_IP/24" dev pd-bastion
  nsx linuxhost ip addr add "$HOST_IP2/24" dev pd-gitlabvm
  nsx gitlabvm  ip addr add "$GITLAB_IP/24" dev pd-linuxhost
  nsx bastion ip link set pd-linuxhost up
  nsx linuxhost ip link set pd-bastion up; nsx linuxhost ip link set pd-gitlabvm up
  nsx gitlabvm ip link set pd-linuxhost up
  local n
  for n in "${NODES[@]:1}"; do node_link "$n"; done
  nsx gitlabvm ip route add default via "$HOST_IP2"
  # the hops know only their own links; the rest of 10.88/16 is answered with ICMP
  # host-unreachable (a router that cannot reach it), so an unroutable realm fails at once
  # with "no route to host", as in the incident
  nsx bastion   ip route add unreachable 10.88.0.0/16
  nsx linuxhost ip route add unreachable 10.88.0.0/16
  setup_hop bastion
  setup_hop linuxhost
}

# a node's own link to bastion: `pd-bastion` in the node (NET.2), `pd-NODE` in bastion (NET.1),
# the node's default route through it
node_link() {
  local n=$1 net=${NODE_NET[$1]}
  ip link add pd-bastion netns "$(ns "$n")" type veth peer name "pd-$n" netns "$(ns bastion)"
  nsx "$n"     ip addr add "$net.2/24" dev pd-bastion
  nsx bastion  ip addr add "$net.1/24" dev "pd-$n"
  nsx "$n"     ip link set pd-bastion up
  nsx bastion  ip link set "pd-$n" up
  nsx "$n"     ip route add default via "$net.1"
}

# ------------------------------------------------------------------------------------------ ssh

host_addrs() {
  if node_name "$1"; then echo "${NODE_NET[$1]}.2"; return; fi
  case "$1" in
    bastion) echo "$BASTION_IP $BASTION_IP2" ;;
    linuxhost) echo "$HOST_IP $HOST_IP2" ;; gitlabvm) echo "$GITLAB_IP" ;;
  esac
}

ssh_setup() {
  local h a
  mkdir -p "$STATE/ssh" /run/sshd
  ssh-keygen -q -t ed25519 -N '' -C pd-lab-test -f "$STATE/ssh/id_ed25519"
  cp "$STATE/ssh/id_ed25519.pub" "$STATE/ssh/authorized_keys"
  : >"$STATE/ssh/known_hosts"
  for h in "${HOSTS[@]}"; do
    mkdir -p "$STATE/$h"
    ssh-keygen -q -t ed25519 -N '' -C "$h" -f "$STATE/$h/ssh_host_ed25519_key"
    {
      echo "# sshd for lab host $h"
      echo "Port 22"
      for a in $(host_addrs "$h"); do echo "ListenAddress $a"; done
      echo "HostKey $STATE/$h/ssh_host_ed25519_key"
      echo "PidFile none"
      echo "AuthorizedKeysFile $STATE/ssh/authorized_keys"
      echo "UsePAM no"
      echo "StrictModes no"
      echo "PermitRootLogin prohibit-password"
      echo "PasswordAuthentication no"
      echo "KbdInteractiveAuthentication no"
      echo "PubkeyAuthentication yes"
      echo "AllowTcpForwarding yes"
      echo "PrintMotd no"
      echo "UseDNS no"
      echo "Subsystem sftp /usr/lib/openssh/sftp-server"
    } >"$STATE/$h/sshd_config"
    /usr/sbin/sshd -t -f "$STATE/$h/sshd_config"
    echo "$(host_addrs "$h" | tr ' ' ',') $(cut -d' ' -f1,2 "$STATE/$h/ssh_host_ed25519_key.pub")" \
      >>"$STATE/ssh/known_hosts"
  done
  # k8snode2 has always had its entry, even in a single-node lab; the others when they exist
  local named=$(( NODE_COUNT > 2 ? NODE_COUNT : 2 ))
  {
  cat <<EOF
# ssh client config for the lab, written for use from the gitlabvm namespace:
#   lab.sh exec gitlabvm ssh -F $STATE/ssh/config k8snode
Host *
  User root
  IdentityFile $STATE/ssh/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $STATE/ssh/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 5
  LogLevel ERROR
Host gitlabvm
  HostName $GITLAB_IP
Host linuxhost
  HostName $HOST_IP2
Host bastion
  HostName $BASTION_IP2
  ProxyJump linuxhost
EOF
  for h in "${ALL_NODES[@]:0:$named}"; do
    printf 'Host %s\n  HostName %s\n  ProxyJump bastion\n' "$h" "$(host_addrs "$h")"
  done
  } >"$STATE/ssh/config"
}

ssh_start() {
  local h
  for h in "${HOSTS[@]}"; do
    spawn "sshd-$h" "$h" "$STATE/$h/sshd.log" /usr/sbin/sshd -D -e -f "$STATE/$h/sshd_config"
  done
}

# ------------------------------------------------------------------------------------------ gitlabvm

registry_config() { # REALM
  cat >"$STATE/gitlabvm/registry.yml" <<EOF
# CNCF distribution (docker-registry) in the gitlabvm namespace, like GitLab's registry
version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $STATE/gitlabvm/registry-data
  delete:
    enabled: true
http:
  addr: 0.0.0.0:5050
  secret: pd-lab-$(cat "$STATE/gitlabvm/http-secret")
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  token:
    realm: $1
    service: container_registry
    issuer: omnibus-gitlab-issuer
    rootcertbundle: $STATE/gitlabvm/token.crt
EOF
  echo "$1" >"$STATE/gitlabvm/realm"
}

registry_start() {
  spawn registry gitlabvm "$STATE/gitlabvm/registry.log" docker-registry serve "$STATE/gitlabvm/registry.yml"
  wait_for 100 "registry on :5050" registry_answers
}
registry_answers() { [ "$(nsx gitlabvm curl -s -o /dev/null -w '%{http_code}' --max-time 1 http://127.0.0.1:5050/v2/)" = 401 ]; }

token_server_start() {
  spawn token-server gitlabvm "$STATE/gitlabvm/token-server.log" "$PY" "$LABTOOL" token-server \
    --config "$STATE/gitlabvm/token-server.json" --listen 0.0.0.0:80
  wait_for 100 "token server on :80" token_answers
}
token_answers() { [ "$(nsx gitlabvm curl -s -o /dev/null -w '%{http_code}' --max-time 1 'http://127.0.0.1:80/jwt/auth?service=container_registry')" = 403 ]; }

gitlab_setup() { # REALM
  local d="$STATE/gitlabvm"
  mkdir -p "$d/registry-data"
  openssl rand -hex 16 >"$d/http-secret"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=gitlab-registry-token" \
    -keyout "$d/token.key" -out "$d/token.crt" 2>/dev/null
  chmod 600 "$d/token.key"
  # users: gition-deploy (deploy token, read_registry on root/gition), outsider (valid login,
  # no rights), root (admin, used to push)
  htpasswd -cbB "$d/users.htpasswd" gition-deploy "$DEPLOY_PASS" 2>/dev/null
  htpasswd -bB "$d/users.htpasswd" outsider "$OUTSIDER_PASS" 2>/dev/null
  htpasswd -bB "$d/users.htpasswd" root "$ROOT_PASS" 2>/dev/null
  cat >"$d/token-server.json" <<EOF
{
  "issuer": "omnibus-gitlab-issuer",
  "service": "container_registry",
  "key": "$d/token.key",
  "cert": "$d/token.crt",
  "htpasswd": "$d/users.htpasswd",
  "lifetime": 300,
  "users": {
    "gition-deploy": {"rights": {"root/gition": ["pull"]}},
    "outsider": {"rights": {}},
    "root": {"rights": {"*": ["pull", "push", "delete", "*"]}, "registry": ["*"]}
  }
}
EOF
  registry_config "$1"
  registry_start
  token_server_start
}

push_images() {
  local tok
  tok=$("$PY" "$LABTOOL" mint --config "$STATE/gitlabvm/token-server.json" --sub root \
        --scope repository:root/gition/backend:pull,push --scope repository:root/gition/frontend:pull,push)
  nsx gitlabvm "$PY" "$LABTOOL" push --registry http://127.0.0.1:5050 --token "$tok" \
    --repo root/gition/backend --tag latest --text "gition backend (FastAPI)" >&2
  nsx gitlabvm "$PY" "$LABTOOL" push --registry http://127.0.0.1:5050 --token "$tok" \
    --repo root/gition/frontend --tag latest --text "gition frontend (React)" >&2
}

# ------------------------------------------------------------------------------------------ node

HOSTS_TOML_DIR() { echo "$STATE/$NODE/etc-containerd/certs.d"; }

write_hosts_toml() { # healthy | no-resolve | server-only ; into DIR (default certs.d/10.88.1.1:5050)
  local kind=$1 dir=${2:-"$(HOSTS_TOML_DIR)/$REGISTRY"}
  mkdir -p "$dir"
  case "$kind" in
    healthy) cat >"$dir/hosts.toml" <<EOF
server = "http://$REGISTRY"

[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
EOF
    ;;
    no-resolve) cat >"$dir/hosts.toml" <<EOF
[host."http://$REGISTRY"]
  capabilities = ["pull"]
EOF
    ;;
    server-only) cat >"$dir/hosts.toml" <<EOF
server = "http://$REGISTRY"
EOF
    ;;
  esac
}

write_node_config() { # healthy | shadowed | v2 | none
  local kind=$1 d="$STATE/$NODE" cp
  case "$kind" in
    healthy)  cp="/etc/containerd/certs.d" ;;
    none)     cp="" ;;
    shadowed) cp="/etc/containerd/certs.d:/etc/docker/certs.d" ;;
    v2)       cp="/etc/containerd/certs.d" ;;
  esac
  containerd config default | sed \
    -e "s#^root = .*#root = \"$d/containerd-root\"#" \
    -e "s#^state = .*#state = \"$d/containerd-state\"#" \
    -e "s#address = \"/run/containerd/containerd.sock\"#address = \"$d/containerd.sock\"#" \
    -e "s#path = \"/opt/containerd\"#path = \"$d/containerd-opt\"#" \
    -e "s#^\\( *\\)config_path = \"\"#\\1config_path = \"$cp\"#" \
    >"$d/config.toml.new"
  if [ "$kind" = v2 ]; then
    # a containerd 2.x-style file: version 3 and the registry under io.containerd.cri.v1.images;
    # containerd 1.6 does not know that plugin section and ends up with an empty config_path
    sed -i -e 's/^version = 2/version = 3/' \
      -e "s#^\\( *\\)config_path = \".*\"#\\1config_path = \"\"#" "$d/config.toml.new"
    cat >>"$d/config.toml.new" <<EOF

[plugins."io.containerd.cri.v1.images".registry]
  config_path = "$cp"
EOF
  fi
  grep -q "config_path = \"" "$d/config.toml.new" || die "could not set config_path"
  mv "$d/config.toml.new" "$d/etc-containerd/config.toml"
}

# the pid file name of a node's containerd (k8snode's keeps the name it always had)
ctd_proc() { if [ "$NODE" = k8snode ]; then echo containerd; else echo "containerd-$NODE"; fi; }

cri_answers() { "$PY" "$LABTOOL" cri-status --socket "$STATE/$NODE/containerd.sock"; }

# start the node's containerd with CONFIG (default its /etc/containerd/config.toml) and wait for
# CRI; fails at once when the process dies (a config it refuses), after 20 s when CRI stays silent
containerd_start() {
  local config=${1:-/etc/containerd/config.toml} name pid i
  name=$(ctd_proc)
  spawn "$name" "$NODE" "$STATE/$NODE/containerd.log" containerd --config "$config"
  pid=$(cat "$STATE/pids/$name.pid")
  for i in $(seq 1 200); do
    cri_answers >/dev/null 2>&1 && return 0
    alive "$pid" || { tail -3 "$STATE/$NODE/containerd.log" >&2; die "containerd on $NODE exited (config $config)"; }
    sleep 0.1
  done
  die "timed out waiting for containerd CRI on $NODE"
}

# stop the node's containerd: only the process its pid file names, and only while that process
# is a containerd inside this node's network namespace (other labs and CI share the PID
# namespace; a stale pid file must never make us kill a reused pid). Works from the root
# namespace and from inside the node (where the restart script runs, over ssh).
containerd_stop() {
  local pidf; pidf="$STATE/pids/$(ctd_proc).pid"
  [ -s "$pidf" ] || return 0
  local pid hp i; pid=$(cat "$pidf"); hp=$(holder_pid "$NODE")
  if [ -n "$hp" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = containerd ] &&
     [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$(readlink "/proc/$hp/ns/net")" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pidf"
}
containerd_restart() { containerd_stop; containerd_start; }

# `restart-containerd`: what the node's restart script runs. Two testing aids, each a file in
# the node's state directory: `restart-delay` (seconds to wait between the stop and the start,
# so a test can kill an apply mid-restart) and `break-next-restart` (one-shot: this restart
# starts containerd on a copy of its config with a line it refuses, so it exits and the restart
# fails, as a bad config would make it; the file is consumed, so the next restart is normal)
cmd_restart_containerd() {
  need_root; load_env
  local d="$STATE/$NODE"
  containerd_stop
  if [ -s "$d/restart-delay" ]; then sleep "$(cat "$d/restart-delay")"; fi
  if [ -e "$d/break-next-restart" ]; then
    rm -f "$d/break-next-restart"
    cp "$d/etc-containerd/config.toml" "$d/config.broken.toml"
    printf '\n[this is not toml\n' >>"$d/config.broken.toml"
    containerd_start "$d/config.broken.toml"
    return 0
  fi
  containerd_start
  log "containerd on $NODE restarted"
}

# the node's restart script: the inventory's containerd_restart, run over ssh inside the node
write_restart_script() {
  local f="$STATE/$NODE/restart-containerd"
  cat >"$f" <<EOF
#!/bin/sh
# restart the lab node $NODE's containerd (not under systemd); exit 0 once CRI answers
exec env PD_LAB_DIR='$STATE' PD_LAB_PREFIX='$PREFIX' PD_LAB_NODE='$NODE' bash '$SELF' restart-containerd
EOF
  chmod 755 "$f"
}

node_setup() {
  local d="$STATE/$NODE"
  mkdir -p "$d/etc-containerd/certs.d" "$d/etc-docker/certs.d" "$d/containerd-root" "$d/containerd-state" "$d/containerd-opt"
  write_node_config healthy
  write_hosts_toml healthy
  # the node's own mount namespace (inside its network namespace): private /etc/containerd and
  # /etc/docker, so that what ssh to the node shows is the node's, not this machine's
  local m
  for m in /etc/containerd /etc/docker; do
    if [ ! -d "$m" ]; then mkdir -p "$m"; echo "$m" >>"$STATE/created-mountpoints"; fi
  done
  start_holder "$NODE" "$d/etc-containerd" /etc/containerd "$d/etc-docker" /etc/docker
  in_host "$NODE" test -f /etc/containerd/config.toml
  write_restart_script
  containerd_start
  # a copy of the startup log (benign errors: aufs, btrfs, devmapper, zfs, cni)
  cp "$d/containerd.log" "$d/containerd-startup.log"
}

# ------------------------------------------------------------------------------------------ up / down

# a pulldoctor inventory for the lab, used from gitlabvm (where an operator would be): every
# node (with its log file and its restart script), the hops, GitLab, and the registry route
write_inventory() {
  local n f="$STATE/inventory-lab.toml" from=""
  {
    echo "# pulldoctor inventory for the lab in $STATE; run pulldoctor in gitlabvm:"
    echo "#   $SELF --dir $STATE exec gitlabvm pulldoctor --config $f"
    echo "[registry]"
    echo "address = \"$REGISTRY\""
    echo "[ssh]"
    echo "config = \"$STATE/ssh/config\""
    echo "known_hosts = [\"$STATE/ssh/known_hosts\"]"
    echo "connect_timeout = 5"
    for n in "${NODES[@]}"; do
      echo
      echo "[[host]]"
      echo "name = \"$n\""
      echo "roles = [\"node\"]"
      echo "address = \"$(host_addrs "$n")\""
      echo "log_files = [\"$STATE/$n/containerd.log\"]"
      echo "containerd_restart = \"$STATE/$n/restart-containerd\""
      from+="${from:+, }\"$n\""
    done
    printf '\n[[host]]\nname = "bastion"\nroles = ["hop"]\naddress = "%s"\n' "$BASTION_IP"
    printf '\n[[host]]\nname = "linuxhost"\nroles = ["hop"]\naddress = "%s"\n' "$HOST_IP"
    printf '\n[[host]]\nname = "gitlabvm"\nroles = ["gitlab"]\naddress = "%s"\n' "$GITLAB_IP"
    printf '\n[[route]]\nname = "registry"\nfrom = [%s]\nhops = ["bastion", "linuxhost", "gitlabvm"]\nports = [5050, 80]\nrealm_port = 80\n' "$from"
  } >"$f"
}

write_env() {
  cat >"$STATE/lab.env" <<EOF
# pulldoctor lab $(date -u +%Y-%m-%dT%H:%M:%SZ)
PD_LAB_DIR=$STATE
PREFIX=$PREFIX
PD_LAB_PREFIX=$PREFIX
PD_LAB_NS_K8SNODE=$(ns k8snode)
PD_LAB_NS_BASTION=$(ns bastion)
PD_LAB_NS_LINUXHOST=$(ns linuxhost)
PD_LAB_NS_GITLABVM=$(ns gitlabvm)
PD_LAB_REGISTRY=$REGISTRY
PD_LAB_IMAGE_BACKEND=$REGISTRY/root/gition/backend:latest
PD_LAB_IMAGE_FRONTEND=$REGISTRY/root/gition/frontend:latest
PD_LAB_REALM=$REALM
DEPLOY_USER=gition-deploy
DEPLOY_PASS=$DEPLOY_PASS
OUTSIDER_USER=outsider
OUTSIDER_PASS=$OUTSIDER_PASS
ROOT_USER=root
ROOT_PASS=$ROOT_PASS
PD_LAB_CONTAINERD_SOCK=$STATE/k8snode/containerd.sock
PD_LAB_CONTAINERD_LOG=$STATE/k8snode/containerd.log
PD_LAB_NODE_ETC_CONTAINERD=$STATE/k8snode/etc-containerd
PD_LAB_SSH_CONFIG=$STATE/ssh/config
PD_LAB_SSH_KEY=$STATE/ssh/id_ed25519
PD_LAB_KNOWN_HOSTS=$STATE/ssh/known_hosts
PD_LAB_NODES=$NODE_COUNT
PD_LAB_INVENTORY=$STATE/inventory-lab.toml
EOF
  chmod 600 "$STATE/lab.env"
}

leftovers() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${PREFIX}($(host_names_re))$" || true; }

cmd_up() {
  need_root; check_tools
  local realm="$DEFAULT_REALM" t0
  t0=$EPOCHREALTIME
  while [ $# -gt 0 ]; do
    case "$1" in
      --realm) realm=$2; shift 2 ;;
      --password) PD_LAB_PASSWORD=$2; shift 2 ;;
      *) die "up: unknown argument $1" ;;
    esac
  done
  local lo; lo=$(leftovers)
  [ -z "$lo" ] || die "lab namespaces already exist: $(echo $lo) (run: lab.sh down, or set PD_LAB_PREFIX)"
  [ ! -e "$STATE/lab.env" ] || die "$STATE holds a lab already (run: lab.sh --dir $STATE down)"
  mkdir -p "$STATE/pids" "$STATE/faults"
  touch "$STATE/.pd-lab"
  # from here on, a failure tears down what was built
  trap 'rc=$?; if [ $rc -ne 0 ]; then log "up failed (exit $rc)"; up_failed; fi' EXIT
  REALM=$realm
  DEPLOY_PASS=${PD_LAB_PASSWORD:-$(openssl rand -hex 12)}
  OUTSIDER_PASS=$(openssl rand -hex 12)
  ROOT_PASS=$(openssl rand -hex 12)
  write_env
  for h in "${HOSTS[@]}"; do mkdir -p "$STATE/$h"; done
  net_up;                                                      fail_point net
  # the hops get a private /etc/sysctl.d (a fix that makes ip_forward stick writes there, and
  # must not touch this machine's)
  if [ ! -d /etc/sysctl.d ]; then mkdir -p /etc/sysctl.d; echo /etc/sysctl.d >>"$STATE/created-mountpoints"; fi
  for h in bastion linuxhost; do
    mkdir -p "$STATE/$h/etc-sysctl.d"; start_holder "$h" "$STATE/$h/etc-sysctl.d" /etc/sysctl.d
  done
  start_holder gitlabvm
  ssh_setup
  for NODE in "${NODES[@]}"; do node_setup; done
  NODE=k8snode
  write_inventory;                                             fail_point node
  ssh_start;                                                   fail_point ssh
  gitlab_setup "$REALM";                                       fail_point gitlab
  push_images;                                                 fail_point push
  trap - EXIT
  log "lab up in $(since "$t0")s: state $STATE"
  log "pull: $SELF --dir $STATE pull backend --user gition-deploy --pass \$DEPLOY_PASS (see $STATE/lab.env)"
}

# testing aid: PD_LAB_FAIL_AFTER=net|node|ssh|gitlab|push makes `up` fail after that step
fail_point() { [ "${PD_LAB_FAIL_AFTER:-}" != "$1" ] || die "PD_LAB_FAIL_AFTER=$1: failing on purpose"; }

up_failed() {
  local f
  for f in "$STATE/k8snode/containerd.log" "$STATE/gitlabvm/registry.log" "$STATE/gitlabvm/token-server.log" \
           "$STATE"/*/holder.log "$STATE"/*/sshd.log; do
    [ -s "$f" ] && { log "--- tail $f"; tail -5 "$f" >&2; }
  done
  if [ "${PD_LAB_KEEP_ON_FAIL:-0}" = 1 ]; then log "PD_LAB_KEEP_ON_FAIL=1: leaving the lab as it is"; return; fi
  cmd_down || true
}

ns_pids() { ip netns pids "$1" 2>/dev/null || true; }

cmd_down() {
  need_root
  local t0 f pid n h i
  t0=$EPOCHREALTIME
  if [ -f "$STATE/lab.env" ]; then PREFIX=$(sed -n 's/^PREFIX=//p' "$STATE/lab.env"); fi
  # 1. processes we started (pid files), then anything else living in our namespaces
  if [ -d "$STATE/pids" ]; then
    for f in "$STATE"/pids/*.pid; do
      [ -s "$f" ] || continue
      pid=$(cat "$f"); if our_pid "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
    done
  fi
  local nss; nss=$(leftovers)
  for n in $nss; do for pid in $(ns_pids "$n"); do kill -TERM "$pid" 2>/dev/null || true; done; done
  for i in $(seq 1 60); do
    local alive=""
    for n in $nss; do alive+=$(ns_pids "$n"); done
    if [ -d "$STATE/pids" ]; then
      for f in "$STATE"/pids/*.pid; do
        if [ -s "$f" ] && our_pid "$(cat "$f")"; then alive+=x; fi
      done
    fi
    [ -z "$alive" ] && break
    sleep 0.05
  done
  for n in $nss; do for pid in $(ns_pids "$n"); do kill -KILL "$pid" 2>/dev/null || true; done; done
  if [ -d "$STATE/pids" ]; then
    for f in "$STATE"/pids/*.pid; do
      if [ -s "$f" ] && our_pid "$(cat "$f")"; then kill -KILL "$(cat "$f")" 2>/dev/null || true; fi
    done
  fi
  # 2. namespaces (their veths, addresses, routes and iptables rules go with them)
  for n in $nss; do
    for i in 1 2 3 4 5; do ip netns del "$n" 2>/dev/null && break; sleep 0.2; done
  done
  for n in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^pd-($(host_names_re))$" || true); do
    ip link del "$n" 2>/dev/null || true
  done
  # 3. mounts under the state dir in this mount namespace (normally none: the node's mounts live
  #    in its own mount namespace, which is gone with its processes)
  if [ -d "$STATE" ]; then
    awk -v s="$STATE" '$5 == s || index($5, s "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  # 4. state
  if [ -f "$STATE/created-mountpoints" ]; then
    while read -r m; do rmdir "$m" 2>/dev/null || true; done <"$STATE/created-mountpoints"
  fi
  if [ -d "$STATE" ]; then
    if [ -e "$STATE/.pd-lab" ]; then rm -rf "$STATE"
    else log "not removing $STATE: no .pd-lab marker"; fi
  fi
  log "down in $(since "$t0")s"
  [ -z "$(leftovers)" ] || die "namespaces left: $(leftovers | tr '\n' ' ')"
}

# ------------------------------------------------------------------------------------------ faults

# a fault on a node other than k8snode is marked NAME@NODE (heal all heals it on that node)
node_suffix() { if [ "$NODE" = k8snode ]; then :; else printf '@%s' "$NODE"; fi; }
fault_key() { echo "$*" | tr ' /' '__'; }
mark()   { echo "$*" >"$STATE/faults/$(fault_key "$@")$(node_suffix)"; }
unmark() { rm -f "$STATE/faults/$(fault_key "$@")$(node_suffix)"; }

node_files_healthy() {
  local cd="$STATE/$NODE/etc-containerd/certs.d"
  rm -rf "$cd" "$STATE/$NODE/etc-docker/certs.d"
  mkdir -p "$cd" "$STATE/$NODE/etc-docker/certs.d"
  write_hosts_toml healthy
}

node_config_fault_active() { local f; for f in config-path-shadowed v2-key-on-v1 no-config-path; do [ -e "$STATE/faults/$f$(node_suffix)" ] && return 0; done; return 1; }

cmd_fault() {
  need_root; load_env
  [ $# -ge 1 ] || die "fault NAME [ARGS]"
  local name=$1; shift
  local cd="$STATE/$NODE/etc-containerd/certs.d"
  case "$name" in
    forward-removed|dnat-removed|masquerade-removed|reject-host-unreachable)
      [ $# -eq 2 ] || die "fault $name HOP PORT"
      hop_ifaces "$1" >/dev/null; check_port "$2"
      apply_ipt_fault "$name" "$1" "$2"
      mark "$name" "$1" "$2" ;;
    ip-forward-off)
      [ $# -eq 1 ] || die "fault ip-forward-off HOP"; hop_ifaces "$1" >/dev/null
      nsx "$1" sysctl -qw net.ipv4.ip_forward=0; mark "$name" "$1" ;;
    no-hosts-toml)
      rm -rf "${cd:?}/$REGISTRY"; mark "$name" ;;
    no-resolve)
      node_files_healthy; write_hosts_toml no-resolve; mark "$name" ;;
    dir-without-port)
      node_files_healthy; mv "$cd/$REGISTRY" "$cd/${REGISTRY%%:*}"; mark "$name" ;;
    server-only)
      node_files_healthy; write_hosts_toml server-only; mark "$name" ;;
    config-path-shadowed)
      # config_path = /etc/containerd/certs.d:/etc/docker/certs.d ; the hosts.toml sits in the
      # second directory, an empty 10.88.1.1:5050/ in the first one shadows it
      node_files_healthy
      mkdir -p "$STATE/$NODE/etc-docker/certs.d"
      mv "$cd/$REGISTRY" "$STATE/$NODE/etc-docker/certs.d/$REGISTRY"
      mkdir -p "$cd/$REGISTRY"
      write_node_config shadowed; containerd_restart; mark "$name" ;;
    v2-key-on-v1)
      write_node_config v2; containerd_restart; mark "$name" ;;
    no-config-path)
      # config_path = "" as `containerd config default` writes it: no hosts.toml is read at all
      write_node_config none; containerd_restart; mark "$name" ;;
    realm-unreachable)
      local url=${1:-$UNREACHABLE_REALM}
      stop_proc registry; registry_config "$url"; registry_start; mark "$name" ;;
    registry-stopped)
      stop_proc registry; mark "$name" ;;
    token-server-stopped)
      stop_proc token-server; mark "$name" ;;
    *) die "unknown fault: $name" ;;
  esac
  log "fault injected: $name $*"
}

cmd_heal() {
  need_root; load_env
  [ $# -ge 1 ] || die "heal NAME [ARGS] | heal all"
  local name=$1; shift
  if [ "$name" = all ]; then
    local f args
    for f in "$STATE"/faults/*; do
      [ -e "$f" ] || continue
      read -r -a args <"$f"
      case "$f" in *@*) NODE=${f##*@} ;; *) NODE=k8snode ;; esac
      cmd_heal "${args[@]}"
    done
    return 0
  fi
  case "$name" in
    forward-removed|dnat-removed|masquerade-removed|reject-host-unreachable)
      if [ $# -eq 0 ]; then # every instance
        local f args found=0
        for f in "$STATE"/faults/"$name"_*; do
          [ -e "$f" ] || continue; read -r -a args <"$f"
          case "$f" in *@*) NODE=${f##*@} ;; *) NODE=k8snode ;; esac
          cmd_heal "${args[@]}"; found=1
        done
        [ $found = 1 ] || log "no active $name fault"
        return 0
      fi
      [ $# -eq 2 ] || die "heal $name HOP PORT"
      hop_ifaces "$1" >/dev/null; check_port "$2"
      unmark "$name" "$1" "$2"
      reset_hop_rules "$1" ;;
    ip-forward-off)
      local hops=("$@"); [ $# -gt 0 ] || hops=(bastion linuxhost)
      for h in "${hops[@]}"; do nsx "$h" sysctl -qw net.ipv4.ip_forward=1; unmark "$name" "$h"; done ;;
    no-hosts-toml|no-resolve|dir-without-port|server-only)
      node_files_healthy; unmark "$name" ;;
    config-path-shadowed|v2-key-on-v1|no-config-path)
      unmark "$name"
      node_files_healthy; write_node_config healthy; containerd_restart ;;
    realm-unreachable)
      stop_proc registry; registry_config "${PD_LAB_REALM:-$DEFAULT_REALM}"; registry_start; unmark "$name" ;;
    registry-stopped)
      registry_answers 2>/dev/null || registry_start; unmark "$name" ;;
    token-server-stopped)
      token_answers 2>/dev/null || token_server_start; unmark "$name" ;;
    *) die "unknown fault: $name" ;;
  esac
  log "healed: $name $*"
}

cmd_faults() {
  load_env; local f
  for f in "$STATE"/faults/*; do
    [ -e "$f" ] || continue
    case "$f" in *@*) echo "$(cat "$f") (on ${f##*@})" ;; *) cat "$f" ;; esac
  done
  return 0
}

# ------------------------------------------------------------------------------------------ CRI

expand_ref() {
  case "$1" in
    */*) echo "$1" ;;
    *:*) echo "$REGISTRY/root/gition/$1" ;;
    *)   echo "$REGISTRY/root/gition/$1:latest" ;;
  esac
}

cmd_pull() {
  need_root; load_env
  [ $# -ge 1 ] || die "pull REF [--user U --pass P] [--timeout S]"
  local ref; ref=$(expand_ref "$1"); shift
  local args=(--socket "$STATE/$NODE/containerd.sock" --image "$ref")
  while [ $# -gt 0 ]; do
    case "$1" in
      --user) args+=(--user "$2"); shift 2 ;;
      --pass|--password) args+=(--pass "$2"); shift 2 ;;
      --timeout) args+=(--timeout "$2"); shift 2 ;;
      *) die "pull: unknown argument $1" ;;
    esac
  done
  local logf="$STATE/$NODE/containerd.log" start end rc=0
  start=$(stat -c %s "$logf")
  "$PY" "$LABTOOL" cri-pull "${args[@]}" || rc=$?
  sleep 0.2   # let containerd finish writing the lines of this pull
  end=$(stat -c %s "$logf")
  echo "$start $end" >"$STATE/$NODE/last-pull.range"
  return $rc
}

cmd_journal() {
  need_root; load_env
  local logf="$STATE/$NODE/containerd.log"
  case "${1:-}" in
    --last)
      local s e; read -r s e <"$STATE/$NODE/last-pull.range" || die "no pull yet"
      tail -c +"$((s + 1))" "$logf" | head -c "$((e - s))" ;;
    --startup) cat "$STATE/$NODE/containerd-startup.log" ;;
    ""|--all) cat "$logf" ;;
    *) die "journal [--last | --startup | --all]" ;;
  esac
}

cmd_exec() {
  need_root; load_env
  [ $# -ge 2 ] || die "exec NS CMD..."
  local h; h=$(host_name "$1"); shift
  in_host "$h" "$@"
}

cmd_ssh() {
  need_root; load_env
  [ $# -ge 1 ] || die "ssh HOST [CMD...]"
  local h; h=$(host_name "$1"); shift
  in_host gitlabvm ssh -F "$STATE/ssh/config" "$h" "$@"
}

cmd_status() {
  need_root
  local n
  echo "state dir: $STATE $( [ -f "$STATE/lab.env" ] && echo '(lab)' || echo '(no lab)')"
  for n in $(leftovers); do echo "netns $n: pids $(ns_pids "$n" | tr '\n' ' ')"; done
  if [ -d "$STATE/faults" ]; then echo "faults:"; cmd_faults | sed 's/^/  /'; fi
}

# ------------------------------------------------------------------------------------------ main

main() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --dir) STATE=$(abs_dir "$2"); shift 2 ;;
      --node) NODE=$2; shift 2 ;;
      -h|--help|help) usage; exit 0 ;;
      *) break ;;
    esac
  done
  [ $# -ge 1 ] || { usage; exit 2; }
  local cmd=$1; shift
  # `--dir` is also accepted right after the command
  if [ "${1:-}" = --dir ]; then STATE=$(abs_dir "$2"); shift 2; fi
  STATE=$(abs_dir "$STATE")
  set_hosts
  case "$cmd" in
    install) cmd_install "$@" ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    env) load_env; grep -v '^#' "$STATE/lab.env" ;;
    fault) cmd_fault "$@" ;;
    heal) cmd_heal "$@" ;;
    faults) cmd_faults ;;
    pull) cmd_pull "$@" ;;
    rmi) need_root; load_env; "$PY" "$LABTOOL" cri-rmi --socket "$STATE/$NODE/containerd.sock" --image "$(expand_ref "$1")" ;;
    images) need_root; load_env; "$PY" "$LABTOOL" cri-images --socket "$STATE/$NODE/containerd.sock" ;;
    cri-status) need_root; load_env; "$PY" "$LABTOOL" cri-status --verbose --socket "$STATE/$NODE/containerd.sock" ;;
    journal) cmd_journal "$@" ;;
    restart-containerd) cmd_restart_containerd ;;
    exec) cmd_exec "$@" ;;
    ssh) cmd_ssh "$@" ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
