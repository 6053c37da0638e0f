#!/usr/bin/env bash
# Docker networking end to end (issue 11): a private dockerd with bridge networking, run in
# a network namespace of its own so that its bridge, veth pairs and iptables rules never
# touch the host's network; runsc containers on the default bridge, with -p, and on a user
# network by name, the way they work under runc.
#
#   scripts/docker-net-e2e.sh [RUNSC]      (default: $CARGO_TARGET_DIR/release/runsc)
#
# Prints "SKIPPED: ..." loudly and exits 0 where dockerd or a namespace can't be had.
set -u
RUNSC=${1:-${CARGO_TARGET_DIR:-target}/release/runsc}
RUNSC=$(readlink -f "$RUNSC")
NAME=docker-net-e2e
. "$(dirname "$0")/lib/dockerd.sh"
for tool in unshare nsenter ip iptables; do
  command -v $tool >/dev/null || { echo "SKIPPED: $NAME: no $tool" >&2; exit 0; }
done
if ! unshare --net true 2>/dev/null; then
  echo "SKIPPED: $NAME: can't make a network namespace here" >&2; exit 0
fi
GW=172.31.250.1
dockerd_start unshare --net -- --bip "$GW/24"
# Commands in dockerd's namespace: the "host" its containers see.
in_host() { nsenter -t "$DPID" -n "$@"; }
in_host ip link set lo up

mkdir -p "$W/img/www" && echo "served by the container" > "$W/img/www/index.html"
make_rbox
D="$DOCKER run --runtime=runsc"

# A container on the default bridge reaches a server on the host's bridge address.
mkdir -p "$W/hostwww" && echo "served by the host" > "$W/hostwww/f"
in_host busybox httpd -p "$GW:8081" -h "$W/hostwww"
check "bridge: address and route" "eth0 $GW" "$($D --rm rbox sh -c \
  "ip -o -4 addr show eth0 | awk '{print \$2}'; ip route | awk '/^default/ {print \$3}'" | tr '\n' ' ' | sed 's/ $//')"
check "bridge: container to host" "served by the host" \
  "$(timeout 60 $D --rm rbox wget -qO- "http://$GW:8081/f" 2>&1)"

# -p publishes a container's port on the host.
id=$($D -d -p 18080:8080 rbox httpd -f -p 8080 -h /www)
got=
for _ in $(seq 50); do
  got=$(in_host busybox wget -qO- http://127.0.0.1:18080/ 2>/dev/null) && break
  sleep 0.2
done
check "-p: host to container" "served by the container" "$got"
$DOCKER rm -f "$id" >/dev/null

# Two containers on a user network talk by name: Docker's embedded DNS at 127.0.0.11, whose
# resolv.conf the prestart hook writes after the sandbox has started.
$DOCKER network create rnet >/dev/null || bad "docker network create"
id=$($D -d --network rnet --name srv rbox httpd -f -p 80 -h /www)
check "user network: resolv.conf" "nameserver 127.0.0.11" \
  "$($D --rm --network rnet rbox grep nameserver /etc/resolv.conf)"
got=
for _ in $(seq 20); do
  got=$(timeout 60 $D --rm --network rnet rbox wget -qO- http://srv/ 2>&1) && break
  sleep 0.5
done
check "user network: by name" "served by the container" "$got"
$DOCKER rm -f "$id" >/dev/null
$DOCKER network rm rnet >/dev/null

# ping without a raw socket: Docker's ping_group_range admits every gid below 2^31, the
# root-started sentry's own gid included (boot::identity), as it admits a runc container's.
if gcc -static -O2 -o "$W/dgram_ping" "$(dirname "$0")/lib/dgram_ping.c" 2>/dev/null; then
  check "ICMP datagram socket: container to host" "reply from $GW" \
    "$(timeout 60 $D --rm -v "$W/dgram_ping:/dgram_ping:ro" rbox /dgram_ping "$GW" 2>&1)"
else
  echo "SKIPPED: $NAME: ICMP datagram socket (no static gcc)" >&2
fi

# Network changes: a container with CAP_NET_ADMIN changes its own namespace, as under runc;
# Docker's default set has no CAP_NET_ADMIN, and the change gets Linux's refusal.
check "--cap-add NET_ADMIN: ip link set" "mtu 1400" "$($D --rm --cap-add NET_ADMIN rbox sh -c \
  'ip link set eth0 mtu 1400 && ip -o link show eth0 | grep -o "mtu [0-9]*"' 2>&1)"
check "default caps: ip link set refused" "ip: SIOCSIFMTU: Operation not permitted" \
  "$($D --rm rbox ip link set eth0 mtu 1400 2>&1)"

dockerd_stop_and_check
