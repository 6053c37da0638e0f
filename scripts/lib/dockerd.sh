# Shared by the Docker end-to-end scripts (sourced): a private dockerd (own data root, exec
# root, socket and containerd namespace) with runsc registered as a runtime, the check
# helpers, and a busybox image. Nothing of the host's Docker is used or changed; everything
# is removed at exit.
#
# The sourcing script sets RUNSC (absolute) and NAME first, then calls
#   dockerd_start [WRAPPER...] -- [DOCKERD ARGS...]
# WRAPPER runs dockerd (e.g. `unshare --net` for a private network namespace); it must exec
# dockerd so that $DPID is dockerd's pid.

DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
if [ ! -x "$DOCKERD" ] || [ ! -x "$DOCKER" ]; then
  echo "SKIPPED: $NAME: no $DOCKERD (apt-get install docker.io)" >&2; exit 0
fi
if [ ! -x "$RUNSC" ]; then echo "$NAME: no runsc at $RUNSC" >&2; exit 1; fi
if [ "$(id -u)" != 0 ]; then echo "SKIPPED: $NAME: needs root" >&2; exit 0; fi

W=$(mktemp -d /tmp/rd.XXXXXX)
# runsc's --root as dockerd 20.10 passes it: runtime-runc (for every runtime) under the exec
# root, then the containerd namespace (--containerd-namespace below).
RROOT=$W/exec/runtime-runc/$NAME
SOCK=$W/d.sock
export DOCKER_HOST=unix://$SOCK
cat > "$W/daemon.json" <<JSON
{ "runtimes": { "runsc": { "path": "$RUNSC", "runtimeArgs": ["--platform=kvm"] } } }
JSON
DPID=
cleanup() {
  if [ -n "$DPID" ]; then
    $DOCKER rm -f $($DOCKER ps -aq 2>/dev/null) >/dev/null 2>&1
    kill "$DPID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$DPID" 2>/dev/null
  fi
  # dockerd's containerd and shims live in its exec root.
  for p in $(pgrep -f "$W" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  umount -R "$W/data" 2>/dev/null; umount -R "$W/exec" 2>/dev/null
  rm -rf "$W" 2>/dev/null
}
trap cleanup EXIT

dockerd_start() {
  local wrapper=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do wrapper+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  "${wrapper[@]}" "$DOCKERD" --data-root "$W/data" --exec-root "$W/exec" -H "unix://$SOCK" \
    --pidfile "$W/d.pid" --config-file "$W/daemon.json" --storage-driver=overlay2 \
    --containerd-namespace "$NAME" --containerd-plugins-namespace "$NAME-p" "$@" \
    > "$W/dockerd.log" 2>&1 &
  DPID=$!
  local up=
  for _ in $(seq 150); do
    if $DOCKER version >/dev/null 2>&1; then up=1; break; fi
    kill -0 $DPID 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$up" ]; then
    echo "SKIPPED: $NAME: dockerd did not start here; its log:" >&2
    tail -20 "$W/dockerd.log" >&2
    exit 0
  fi
}

# Stops dockerd and checks that nothing of runsc is left behind.
dockerd_stop_and_check() {
  sleep 0.5
  check "nothing under runsc --root" "" "$(ls "$RROOT" 2>/dev/null)"
  check "no sandbox process" "" "$(pgrep -f "$RUNSC.* sandbox " || true)"
  kill "$DPID"; for _ in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$DPID" 2>/dev/null; then bad "dockerd stopped"; else ok "dockerd stopped"; DPID=; fi
  echo "$NAME: $passed passed, $fails failed"
  [ "$fails" = 0 ]
}

fails=0; passed=0
ok() { passed=$((passed+1)); echo "ok: $*"; }
bad() { fails=$((fails+1)); echo "FAIL: $*"; }
check() { # name expected actual
  if [ "$2" == "$3" ]; then ok "$1"; else bad "$1: expected [$2] got [$3]"; fi
}

# A busybox image: docker import of a static busybox root, as `rbox`; extra files under
# $W/img before the call go in too.
make_rbox() {
  mkdir -p "$W/img/bin" "$W/img/etc" "$W/img/tmp" "$W/img/data"
  cp /bin/busybox "$W/img/bin/"
  for c in $(/bin/busybox --list); do [ "$c" = busybox ] || ln -sf busybox "$W/img/bin/$c"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$W/img/etc/passwd"
  echo 'root:x:0:' > "$W/img/etc/group"
  tar -C "$W/img" -c . | $DOCKER import -c 'CMD ["/bin/sh"]' - rbox >/dev/null || { bad "docker import"; exit 1; }
}
