#!/bin/bash
# The README's demo: brings up deploy/examples/web.yaml inside a throwaway sandbox host and shows
# what mesh does, with real commands; then takes everything down again.
#
# The sandbox never touches this machine's network. "host" is a network namespace made here
# (meshd runs in it, so its bridges, veths and nftables tables are made there), "wan" is a
# second one standing for the outside world, joined to host by a veth pair on documentation
# addresses (RFC 5737):
#
#    mesh-demo-host                                  mesh-demo-wan ("the internet")
#    wan0 203.0.113.1/24  <-------- veth -------->  eth0 203.0.113.254/24: a DNS server
#    default via 203.0.113.254                       lo 198.51.100.80: a web server
#
# meshd's DNS forwards the names it does not know to the wan's DNS server (dnsmasq, which knows
# outside.example), never to this machine's resolvers.
#
# Containers and their cgroups are real (cgroup parent "mesh-demo"); meshd keeps its state in a
# temporary directory. Everything is removed on exit, also when a step fails.
#
# Environment: MESHD, MESHCTL (default: from PATH), MESH_SHIM (default: meshd's own choice),
# SPEC (default: deploy/examples/web.yaml
# next to this script), MESH_DEMO_DIR (default: a new directory under /tmp).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MESHD=${MESHD:-$(command -v meshd || true)}
MESHCTL=${MESHCTL:-$(command -v meshctl || true)}
SPEC=${SPEC:-$here/examples/web.yaml}
[[ -x "$MESHD" && -x "$MESHCTL" ]] || {
  echo "demo: meshd and meshctl are needed (install them, or set MESHD and MESHCTL)" >&2
  exit 1
}
[[ $(id -u) == 0 ]] || { echo "demo: run it as root (it makes namespaces and cgroups)" >&2; exit 1; }
busybox=$(command -v busybox || true)
[[ -n "$busybox" ]] || { echo "demo: busybox is needed (apt-get install busybox-static)" >&2; exit 1; }
dnsmasq=$(command -v dnsmasq || true)
[[ -n "$dnsmasq" ]] || { echo "demo: dnsmasq is needed (apt-get install dnsmasq-base)" >&2; exit 1; }

host=mesh-demo-host
wan=mesh-demo-wan
dir=${MESH_DEMO_DIR:-$(mktemp -d /tmp/mesh-demo.XXXXXX)}
socket=$dir/run/meshd.sock
meshd_pid=""
httpd_pid=""
dnsmasq_pid=""
export MESH_HOST="unix://$socket"

# nsenter, not `ip netns exec`: that one also remounts /sys for the namespace, which hides the
# cgroup hierarchies meshd needs. nsenter enters the network namespace only, and execs the
# command (so $! of a background one is its pid).
in_host() { nsenter --net="/run/netns/$host" "$@"; }
in_wan() { nsenter --net="/run/netns/$wan" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

cleanup() {
  set +e
  [[ -n "$meshd_pid" ]] && "$MESHCTL" down web >/dev/null 2>&1
  if [[ -n "$meshd_pid" ]]; then
    kill "$meshd_pid" 2>/dev/null
    wait "$meshd_pid" 2>/dev/null
  fi
  # Containers a failed step left: their supervisors (mesh-shim) by the pid meshd's runtime
  # recorded, and whatever is left in their cgroups.
  for state in "$dir"/run/containers/*/state.json; do
    [[ -f "$state" ]] || continue
    pid=$(sed -n 's/.*"shim": *{[^}]*"pid": *\([0-9]*\).*/\1/p' <(tr -d '\n' <"$state"))
    [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null
  done
  for cg in /sys/fs/cgroup/mesh-demo /sys/fs/cgroup/*/mesh-demo; do
    [[ -d "$cg" ]] || continue
    for c in "$cg"/*/; do
      [[ -d "$c" ]] || continue
      [[ -f "$c/cgroup.kill" ]] && echo 1 >"$c/cgroup.kill"
      [[ -f "$c/cgroup.procs" ]] && xargs -r kill -9 <"$c/cgroup.procs" 2>/dev/null
      sleep 0.1
      rmdir "$c" 2>/dev/null
    done
    rmdir "$cg" 2>/dev/null
  done
  [[ -n "$httpd_pid" ]] && kill "$httpd_pid" 2>/dev/null
  [[ -n "$dnsmasq_pid" ]] && kill "$dnsmasq_pid" 2>/dev/null
  # Namespace pins and overlay mounts under the demo's directories.
  awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r |
    xargs -r -n1 umount -l 2>/dev/null
  ip netns del "$host" 2>/dev/null
  ip netns del "$wan" 2>/dev/null
  [[ -z "${MESH_DEMO_DIR:-}" ]] && rm -rf "$dir"
}
trap cleanup EXIT

step "A sandbox host and an outside world (network namespaces $host and $wan)"
ip netns del "$host" 2>/dev/null || true
ip netns del "$wan" 2>/dev/null || true
ip netns add "$host"
ip netns add "$wan"
ip link add wan0 netns "$host" type veth peer name eth0 netns "$wan"
in_host ip link set lo up
in_host ip addr add 203.0.113.1/24 dev wan0
in_host ip link set wan0 up
in_host ip route add default via 203.0.113.254
in_wan ip link set lo up
in_wan ip addr add 203.0.113.254/24 dev eth0
in_wan ip addr add 198.51.100.80/32 dev lo
in_wan ip link set eth0 up
mkdir -p "$dir/www" "$dir/run" "$dir/state"
echo "hello from the outside world" >"$dir/www/index.html"
nsenter --net="/run/netns/$wan" "$busybox" httpd -f -p 198.51.100.80:80 -h "$dir/www" &
httpd_pid=$!
nsenter --net="/run/netns/$wan" "$dnsmasq" --keep-in-foreground --conf-file=/dev/null --no-resolv \
  --no-hosts --user=root --pid-file= --bind-interfaces --listen-address=203.0.113.254 \
  --address=/outside.example/198.51.100.80 2>/dev/null &
dnsmasq_pid=$!
echo "host 203.0.113.1 --- wan 203.0.113.254 (DNS: outside.example); a web server on the outside at 198.51.100.80"

step "meshd in the sandbox host"
nsenter --net="/run/netns/$host" "$MESHD" --state-dir "$dir/state" --run-dir "$dir/run" --socket "$socket" \
  --cgroup-parent mesh-demo --dns-upstreams 203.0.113.254 ${MESH_SHIM:+--shim "$MESH_SHIM"} \
  >"$dir/meshd.log" 2>&1 &
meshd_pid=$!
for _ in $(seq 100); do
  "$MESHCTL" version >/dev/null 2>&1 && break
  kill -0 "$meshd_pid" 2>/dev/null || { cat "$dir/meshd.log" >&2; exit 1; }
  sleep 0.1
done
show "$MESHCTL" version

step "Bring up the group (containers start in dependency order; --wait: until healthy)"
show "$MESHCTL" up -f "$SPEC" --wait
show "$MESHCTL" ps

step "Containers reach each other by name (meshd answers DNS on the network's gateway)"
show "$MESHCTL" exec web-client cat /etc/resolv.conf
show "$MESHCTL" exec web-client wget -q -O - http://server/
show "$MESHCTL" exec web-client nslookup www

step "Containers reach the outside world through NAT, by names meshd forwards"
show "$MESHCTL" exec web-client wget -q -O - http://outside.example/

step "The published port answers from the outside (wan -> host:8080 -> web-server:80)"
show nsenter --net="/run/netns/$wan" "$busybox" wget -q -O - http://203.0.113.1:8080/

step "Tear it down"
show "$MESHCTL" down web
show "$MESHCTL" ps -a
echo
echo "demo: done"
