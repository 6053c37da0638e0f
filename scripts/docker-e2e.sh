#!/usr/bin/env bash
# Docker end to end: a private dockerd (own data root, exec root, socket and containerd)
# with runsc registered as a runtime, driven with the Debian docker CLI. Nothing of the
# host's Docker is used or changed; everything is removed at the end.
#
#   scripts/docker-e2e.sh [RUNSC]      (default: $CARGO_TARGET_DIR/release/runsc)
#
# Prints "SKIPPED: ..." loudly and exits 0 when dockerd can't start here; exits 1 on the
# first failed check. BENCH=1 also times `docker run --rm IMG true` with runsc and runc.
set -u
RUNSC=${1:-${CARGO_TARGET_DIR:-target}/release/runsc}
RUNSC=$(readlink -f "$RUNSC")
DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
if [ ! -x "$DOCKERD" ] || [ ! -x "$DOCKER" ]; then
  echo "SKIPPED: docker-e2e: no $DOCKERD (apt-get install docker.io)" >&2; exit 0
fi
if [ ! -x "$RUNSC" ]; then echo "docker-e2e: no runsc at $RUNSC" >&2; exit 1; fi
if [ "$(id -u)" != 0 ]; then echo "SKIPPED: docker-e2e: needs root" >&2; exit 0; fi

W=$(mktemp -d /tmp/rd.XXXXXX)
RROOT=$W/exec/runtime-runsc/moby   # runsc's --root, as dockerd passes it
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

"$DOCKERD" --data-root "$W/data" --exec-root "$W/exec" -H "unix://$SOCK" \
  --pidfile "$W/d.pid" --config-file "$W/daemon.json" --bridge=none --iptables=false \
  --ip6tables=false --ip-masq=false --storage-driver=overlay2 \
  --containerd-namespace runsc-e2e --containerd-plugins-namespace runsc-e2e-p \
  > "$W/dockerd.log" 2>&1 &
DPID=$!
up=
for _ in $(seq 150); do
  if $DOCKER version >/dev/null 2>&1; then up=1; break; fi
  kill -0 $DPID 2>/dev/null || break
  sleep 0.1
done
if [ -z "$up" ]; then
  echo "SKIPPED: docker-e2e: dockerd did not start here; its log:" >&2
  tail -20 "$W/dockerd.log" >&2
  exit 0
fi

fails=0; passed=0
ok() { passed=$((passed+1)); echo "ok: $*"; }
bad() { fails=$((fails+1)); echo "FAIL: $*"; }
check() { # name expected actual
  if [ "$2" == "$3" ]; then ok "$1"; else bad "$1: expected [$2] got [$3]"; fi
}

# A busybox image made here: docker import of a static busybox root.
mkdir -p "$W/img/bin" "$W/img/etc" "$W/img/tmp" "$W/img/data"
cp /bin/busybox "$W/img/bin/"
for c in $(/bin/busybox --list); do [ "$c" = busybox ] || ln -sf busybox "$W/img/bin/$c"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$W/img/etc/passwd"
echo 'root:x:0:' > "$W/img/etc/group"
echo 'from the image' > "$W/img/etc/motd"
tar -C "$W/img" -c . | $DOCKER import -c 'CMD ["/bin/sh"]' - rbox >/dev/null || { bad "docker import"; exit 1; }
D="$DOCKER run --runtime=runsc --network=none"

check "run --rm echo" "hello" "$($D --rm rbox echo hello 2>&1)"
$D --rm rbox sh -c 'exit 7'; check "exit status" 7 $?
$D --rm rbox sh -c 'kill -9 $$'; check "killed by a signal" 137 $?
check "-e" "v1" "$($D --rm -e FOO=v1 rbox sh -c 'echo $FOO')"
check "-w" "/tmp/wd" "$($D --rm -w /tmp/wd rbox pwd)"
check "-u" "1000 1001" "$($D --rm -u 1000:1001 rbox sh -c 'echo $(id -u) $(id -g)')"
check "hostname" "box1" "$($D --rm --hostname box1 rbox hostname)"
check "stdin" "piped" "$(echo piped | $D --rm -i rbox cat)"
# -it: the pty master goes to the shim over --console-socket; output comes back through it.
if command -v script >/dev/null; then
  out=$( (sleep 3) | timeout 30 script -qec "$D --rm -it rbox sh -c 'echo through the pty'" /dev/null | tr -d '\r')
  check "-it (pty over --console-socket)" "through the pty" "$out"
  # The window size docker sets on the console reaches the container's terminal. This
  # dockerd (20.10, API 1.41) sends no process.consoleSize, so the size comes with the resize
  # the client sends after start: a program that asks at once sees 0x0, under runc as here
  # (runsc honours consoleSize when given: tests/tests/oci.rs). Hence the pause.
  out=$( (sleep 3) | timeout 30 script -qec "stty rows 24 cols 80; $D --rm -it rbox sh -c 'sleep 1; stty size'" /dev/null | tr -d '\r')
  check "-it stty size" "24 80" "$out"
  # The console is the container's /dev/pts/0, as under runc.
  out=$( (sleep 3) | timeout 30 script -qec "$D --rm -it rbox sh -c 'tty; readlink /proc/self/fd/0'" /dev/null | tr -d '\r')
  check "-it tty name" "/dev/pts/0
/dev/pts/0" "$out"
fi
# Writes to the root stay in the container.
check "root writes stay" "from the image" "$($D --rm rbox sh -c 'echo changed > /etc/motd'; $D --rm rbox cat /etc/motd)"
check "--tmpfs under --read-only" "in tmpfs" "$($D --rm --read-only --tmpfs /scratch rbox sh -c 'echo in tmpfs > /scratch/f && cat /scratch/f')"
check "--read-only" "refused" "$($D --rm --read-only rbox sh -c '{ echo x > /etc/x; } 2>/dev/null && echo written || echo refused')"
mkdir -p "$W/host" && echo "on the host" > "$W/host/f"
check "-v reads" "on the host" "$($D --rm -v "$W/host:/data:ro" rbox cat /data/f)"
# A read-write bind mount: the container's changes reach the host directory.
$D --rm -v "$W/host:/data" rbox sh -c 'echo hi > /data/w; mkdir /data/dd; mv /data/w /data/dd/w; rm /data/f'
check "-v writes reach the host" "hi gone" "$(cat "$W/host/dd/w") $([ -e "$W/host/f" ] && echo kept || echo gone)"
chmod 1777 "$W/host"
$D --rm -u 1000:1001 -v "$W/host:/data" rbox sh -c 'echo mine > /data/owned'
check "-v new file owner" "1000:1001" "$(stat -c %u:%g "$W/host/owned")"
check "-v :ro refuses" "refused" "$($D --rm -v "$W/host:/data:ro" rbox sh -c '{ echo x > /data/x; } 2>/dev/null && echo written || echo refused')"
# The container's own pseudo-terminals (devpts).
check "devpts" "ptmx" "$($D --rm rbox sh -c 'test -c /dev/pts/ptmx && test -L /dev/ptmx && ls /dev/pts')"
# A debootstrap'd Debian root (scripts/debian-cache.sh; CI builds it before the tests).
debian_tar="$(dirname "$0")/../${CARGO_TARGET_DIR:-target}/debian/bookworm-minbase.tar.gz"
case "${CARGO_TARGET_DIR:-}" in /*) debian_tar="$CARGO_TARGET_DIR/debian/bookworm-minbase.tar.gz" ;; esac
if [ -f "$debian_tar" ]; then
  $DOCKER import -c 'CMD ["/bin/bash"]' "$debian_tar" rdebian >/dev/null || bad "docker import of the Debian root"
  check "Debian image: os-release, dpkg, apt" "debian installed ok" \
    "$($D --rm rdebian sh -c '. /etc/os-release; echo $ID $(dpkg-query -W -f="\${db:Status-Status}" dpkg) $(apt-cache policy >/dev/null && echo ok)')"
else
  echo "SKIPPED: Debian image checks: no $debian_tar (run scripts/debian-cache.sh as root)"
fi
out=$($D --rm rbox /no/such 2>&1); rc=$?
case "$out" in
  *'exec: "/no/such": stat /no/such: no such file or directory'*) ok "missing entrypoint message" ;;
  *) bad "missing entrypoint message: $out" ;;
esac
check "missing entrypoint status" 127 $rc

# Detached: exec, logs, stop (TERM trap), kill, rm -f.
id=$($D -d rbox sh -c 'trap "echo trapped; exit 0" TERM; echo up; while :; do sleep 0.2; done')
sleep 1
check "exec" "in exec" "$($DOCKER exec "$id" echo in exec)"
$DOCKER exec "$id" sh -c 'exit 5'; check "exec status" 5 $?
check "exec -e -w" "x /tmp" "$($DOCKER exec -e E=x -w /tmp "$id" sh -c 'echo $E $(pwd)')"
check "top" "1" "$($DOCKER top "$id" | tail -n +2 | wc -l)"
# The sandbox process runs under the sentry's seccomp filter in every thread (after exec).
spid=$(pgrep -f "sandbox --bundle .*$id" | head -n 1)
check "sandbox under seccomp, every thread" "2" \
  "$(for t in /proc/"$spid"/task/*; do awk '/^Seccomp:/ {print $2}' "$t/status"; done | sort -u | tr '\n' ' ' | sed 's/ $//')"
# ... keeping only CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID, NET_BIND_SERVICE.
check "sandbox capabilities, every thread" "000000000000041f" \
  "$(for t in /proc/"$spid"/task/*; do awk '/^CapEff:/ {print $2}' "$t/status"; done | sort -u | tr '\n' ' ' | sed 's/ $//')"
# ... in mount, pid, ipc and uts namespaces of its own (pid 1 there), in an empty root
# holding only its own /proc (boot::confine).
check "sandbox namespaces differ from the host's" "mnt pid ipc uts" \
  "$(for n in mnt pid ipc uts; do [ "$(readlink /proc/"$spid"/ns/$n)" != "$(readlink /proc/self/ns/$n)" ] && printf '%s ' $n; done | sed 's/ $//')"
check "sandbox is pid 1 of its namespace" "1" "$(awk '/^NSpid:/ {print $NF}' /proc/"$spid"/status)"
check "sandbox root is empty but for its /proc" "proc" "$(ls /proc/"$spid"/root | tr '\n' ' ' | sed 's/ $//')"
$DOCKER pause "$id" >/dev/null && check "pause" "paused" "$($DOCKER inspect -f '{{.State.Status}}' "$id")"
$DOCKER unpause "$id" >/dev/null && check "unpause" "running" "$($DOCKER inspect -f '{{.State.Status}}' "$id")"
$DOCKER stop -t 5 "$id" >/dev/null
check "stop runs the TERM trap" "up trapped" "$($DOCKER logs "$id" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check "stop exit code" 0 "$($DOCKER inspect -f '{{.State.ExitCode}}' "$id")"
$DOCKER rm "$id" >/dev/null
id=$($D -d rbox sleep 1000)
sleep 0.5
$DOCKER stop -t 1 "$id" >/dev/null
check "stop kills after the timeout" 137 "$($DOCKER inspect -f '{{.State.ExitCode}}' "$id")"
$DOCKER rm "$id" >/dev/null
id=$($D -d rbox sleep 1000)
$DOCKER kill "$id" >/dev/null
check "kill" 137 "$($DOCKER wait "$id")"
id=$($D -d rbox sh -c 'sleep 0.5; exit 4')
check "wait" 4 "$($DOCKER wait "$id")"
$DOCKER rm "$id" >/dev/null
id=$($D -d rbox sleep 1000)
$DOCKER exec -d "$id" sh -c 'echo detached > /tmp/d'
sleep 0.5
check "exec -d" "detached" "$($DOCKER exec "$id" cat /tmp/d)"
if command -v script >/dev/null; then
  out=$( (sleep 3) | timeout 30 script -qec "$DOCKER exec -it $id echo exec pty" /dev/null | tr -d '\r')
  check "exec -it" "exec pty" "$out"
fi
id2=$($D -d rbox sleep 1000)
$DOCKER rm -f "$id" "$id2" >/dev/null; check "rm -f" 0 $?

# Networking (hostinet): the container's sockets live in the namespace Docker made for it
# (--network=none: loopback only), and TCP over its loopback works.
check "netns: loopback only" 1 "$($D --rm rbox sh -c 'ip -o link | wc -l')"
check "netns: TCP over loopback" "over-loopback" "$($D --rm rbox sh -c \
  'nc -l -p 7777 > /tmp/got & sleep 0.5; echo over-loopback | nc 127.0.0.1 7777; sleep 0.3; cat /tmp/got')"

# containerd's runc shim with runsc as its binary (the way to Kubernetes RuntimeClass):
# ctr against dockerd's own containerd, the image imported from `docker save`.
CTR="ctr --address $W/exec/containerd/containerd.sock -n runsc-ctr"
if command -v ctr >/dev/null && [ -S "$W/exec/containerd/containerd.sock" ]; then
  $DOCKER save rbox | $CTR image import --all-platforms - >/dev/null 2>&1
  img=$($CTR image ls -q | grep rbox | head -1)
  out=$(timeout 60 $CTR run --rm --runc-binary "$RUNSC" --runtime io.containerd.runc.v2 \
        "$img" ctr1 sh -c 'echo via ctr $A' 2>&1)
  check "ctr run --runc-binary runsc" "via ctr" "$out"
  timeout 60 $CTR run --rm --runc-binary "$RUNSC" --env A=x "$img" ctr2 sh -c 'exit 3'
  check "ctr run exit status" 3 $?
  $CTR image rm "$img" >/dev/null 2>&1
else
  echo "SKIPPED: ctr check: no ctr or no containerd socket" >&2
fi

if [ "${BENCH:-0}" = 1 ]; then
  # Interleaved runs, so that both runtimes see the same machine load; medians of 9.
  : > "$W/t.runc"; : > "$W/t.runsc"
  for i in 1 2 3 4 5 6 7 8 9; do
    for rt in runc runsc; do
      s=$(date +%s%N); $DOCKER run --rm --runtime=$rt --network=none rbox true; e=$(date +%s%N)
      echo "$(( (e - s) / 1000000 ))" >> "$W/t.$rt"
    done
  done
  mc=$(sort -n "$W/t.runc" | sed -n 5p); ms=$(sort -n "$W/t.runsc" | sed -n 5p)
  echo "bench: docker run --rm IMG true: runc median ${mc} ms, runsc median ${ms} ms, ratio $(awk "BEGIN{printf \"%.2f\", $ms/$mc}")"
  # Memory of an idle container: the sandbox process (runsc) or the program itself (runc).
  for rt in runc runsc; do
    id=$($DOCKER run -d --runtime=$rt --network=none rbox sleep 1000)
    sleep 1
    pid=$($DOCKER inspect -f '{{.State.Pid}}' "$id")
    echo "bench: idle sleep container, $rt RSS kB: $(awk '/^VmRSS/ {print $2}' /proc/$pid/status)"
    $DOCKER rm -f "$id" >/dev/null
  done
fi

# Nothing left: no container state, no sandbox process.
sleep 0.5
check "nothing under runsc --root" "" "$(ls "$RROOT" 2>/dev/null)"
check "no sandbox process" "" "$(pgrep -f "$RUNSC.* sandbox " || true)"
kill "$DPID"; for _ in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$DPID" 2>/dev/null; then bad "dockerd stopped"; else ok "dockerd stopped"; DPID=; fi
echo "docker-e2e: $passed passed, $fails failed"
[ "$fails" = 0 ]
