#!/usr/bin/env bash
# Docker end to end: a private dockerd (own data root, exec root, socket and containerd)
# with runsc registered as a runtime, driven with the Debian docker CLI. Nothing of the
# host's Docker is used or changed; everything is removed at the end.
#
#   scripts/docker-e2e.sh [RUNSC]      (default: $CARGO_TARGET_DIR/release/runsc)
#
# Prints "SKIPPED: ..." loudly and exits 0 when dockerd can't start here; exits 1 on the
# first failed check. The timing of `docker run --rm IMG true` with runsc against runc is
# `bench --docker` (bench/docker-run.sh).
set -u
RUNSC=${1:-${CARGO_TARGET_DIR:-target}/release/runsc}
RUNSC=$(readlink -f "$RUNSC")
NAME=docker-e2e
. "$(dirname "$0")/lib/dockerd.sh"
# A second runtime: the same runsc with the sentry's Landlock self-test on
# (boot::landlock::SELFTEST_ENV): right after restricting itself, the sandbox process opens
# `..`, `.` and `../daemon.json` in each directory tree it was given and writes the results
# to the container's stderr. Only reads: nothing changes even if a try that should fail
# succeeds.
cat > "$W/runsc-landlock-test" <<SH
#!/bin/sh
RUNSC_LANDLOCK_SELFTEST='/ read:..,proc:..,read:.,read:../daemon.json' exec "$RUNSC" "\$@"
SH
chmod 755 "$W/runsc-landlock-test"
cat > "$W/daemon.json" <<JSON
{ "runtimes": { "runsc": { "path": "$RUNSC", "runtimeArgs": ["--platform=kvm"] },
                "runsc-landlock-test": { "path": "$W/runsc-landlock-test", "runtimeArgs": ["--platform=kvm"] } } }
JSON
dockerd_start -- --bridge=none --iptables=false --ip6tables=false --ip-masq=false

mkdir -p "$W/img/etc" && echo 'from the image' > "$W/img/etc/motd"
make_rbox
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
# A single file bound is the host file itself, as under runc.
echo "file on the host" > "$W/hostfile"
check "-v FILE: writes reach the host" "file on the host appended" \
  "$($D --rm -v "$W/hostfile:/etc/hf" rbox sh -c 'echo appended >> /etc/hf'; tr '\n' ' ' < "$W/hostfile" | sed 's/ $//')"
check "-v FILE:ro refuses" "refused" "$($D --rm -v "$W/hostfile:/etc/hf:ro" rbox sh -c '{ echo x >> /etc/hf; } 2>/dev/null && echo written || echo refused')"
# /dev/stdout and /dev/stderr are /proc/self/fd links to the container's pipes: opened
# for writing (with O_CREAT, as a shell's > does) they reach the pipe, as under runc.
# Docker copies the two pipes on their own, so each stream is checked apart: their order on
# one terminal is not the container's to set.
$D --rm rbox sh -c 'echo to stderr > /dev/stderr; echo to stdout > /dev/stdout' \
  >"$W/devout" 2>"$W/deverr"
check "> /dev/stderr and /dev/stdout" "to stdout|to stderr" "$(cat "$W/devout")|$(cat "$W/deverr")"
# process.rlimits (--ulimit).
check "--ulimit" "100 200" "$($D --rm --ulimit nofile=100:200 rbox sh -c 'echo $(ulimit -Sn) $(ulimit -Hn)')"
# linux.sysctl (oci::sysctl): Docker's defaults (any user may bind a port below 1024) and
# --sysctl land in the container's own network namespace, as runc puts them there.
SYSCTLS='cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/core/somaxconn | tr "\n" " "'
sysctls=$($D --rm -u 1000 --sysctl net.core.somaxconn=1234 rbox sh -c "$SYSCTLS" 2>&1)
check "sysctl: Docker's defaults, --sysctl" "0 1234 " "$sysctls"
check "sysctl: as runc's" \
  "$($DOCKER run --rm --runtime=runc --network=none -u 1000 --sysctl net.core.somaxconn=1234 rbox sh -c "$SYSCTLS" 2>&1)" \
  "$sysctls"
# The container's own pseudo-terminals (devpts).
check "devpts" "ptmx" "$($D --rm rbox sh -c 'test -c /dev/pts/ptmx && test -L /dev/ptmx && ls /dev/pts')"
# process.capabilities and noNewPrivileges: Docker's default set as runc gives it (CapEff
# 00000000a80425fb), --cap-drop, no-new-privileges, and the same lines as under runc.
CAPS='grep -E "^(Cap|NoNew)" /proc/self/status'
check "caps: default CapEff" "00000000a80425fb" "$($D --rm rbox sh -c "$CAPS" | awk '/^CapEff/ {print $2}')"
for opts in "" "--cap-drop=CHOWN --cap-add=SYS_ADMIN" "-u 1000" "--security-opt no-new-privileges"; do
  check "caps: as runc's with [$opts]" "$($DOCKER run --rm --runtime=runc --network=none $opts rbox sh -c "$CAPS" 2>&1)" \
    "$($D --rm $opts rbox sh -c "$CAPS" 2>&1)"
done
# --privileged: every capability Docker lists (20.10 knows them up to CAP_AUDIT_READ, 37). Not
# compared with runc: runc can give only what the host gave dockerd, where the sandbox's
# capabilities are its own (a host without CAP_SYS_RESOURCE fails runc's capset).
PRIV=0000003fffffffff
check "caps: --privileged" "$PRIV" "$($D --rm --privileged rbox sh -c "$CAPS" | awk '/^CapEff/ {print $2}')"
check "caps: no-new-privileges" "1" "$($D --rm --security-opt no-new-privileges rbox sh -c "$CAPS" | awk '/^NoNewPrivs/ {print $2}')"
check "caps: root may chown" "1000" "$($D --rm rbox sh -c 'touch /tmp/f && chown 1000 /tmp/f && stat -c %u /tmp/f')"
check "caps: --cap-drop=CHOWN: chown fails with EPERM" "chown: /tmp/f: Operation not permitted 1" \
  "$($D --rm --cap-drop=CHOWN rbox sh -c 'touch /tmp/f && chown 1000 /tmp/f 2>&1; echo $?' | tr '\n' ' ' | sed 's/ $//')"
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
check "exec: the container's capabilities" "00000000a80425fb" "$($DOCKER exec "$id" sh -c "$CAPS" | awk '/^CapEff/ {print $2}')"
check "exec --privileged: every capability" "$PRIV" "$($DOCKER exec --privileged "$id" sh -c "$CAPS" | awk '/^CapEff/ {print $2}')"
check "top" "1" "$($DOCKER top "$id" | tail -n +2 | wc -l)"
# The sandbox process runs under the sentry's seccomp filter in every thread (after exec).
spid=$(pgrep -f "sandbox --bundle .*$id" | head -n 1)
check "sandbox under seccomp, every thread" "2" \
  "$(for t in /proc/"$spid"/task/*; do awk '/^Seccomp:/ {print $2}' "$t/status"; done | sort -u | tr '\n' ' ' | sed 's/ $//')"
# ... keeping only CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID, NET_BIND_SERVICE.
check "sandbox capabilities, every thread" "000000000000041f" \
  "$(for t in /proc/"$spid"/task/*; do awk '/^CapEff:/ {print $2}' "$t/status"; done | sort -u | tr '\n' ' ' | sed 's/ $//')"
# ... as a user of its own, not root (boot::identity: 0x7f000000 plus the number of its pid
# namespace, whose nsfs inode counts from 0xf0000000): real, effective, saved and
# file-system uid. KVM's workers (kvm-*, kernel code only) are made with the VM before the
# change (boot::platform_thread) and are not the sentry's threads.
own=$(( 0x7f000000 + $(stat -L -c %i /proc/"$spid"/ns/pid) - 0xf0000000 ))
check "sandbox runs as a user of its own, every thread" "$own $own $own $own" \
  "$(for t in /proc/"$spid"/task/*; do case $(cat "$t/comm") in kvm-*) continue;; esac; awk '/^Uid:/ {print $2, $3, $4, $5}' "$t/status"; done | sort -u | tr '\n' ' ' | sed 's/ $//')"
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

# docker update: the task and memory limits apply live (runsc update --resources - with
# the JSON on stdin); what the sandbox can't enforce is refused, naming the field.
id=$($D -d -m 64m rbox sleep 1000)
sleep 0.5
check "update: the create-time memory limit" "65536" \
  "$($DOCKER exec "$id" awk '/^MemTotal/ {print $2}' /proc/meminfo)"
out=$($DOCKER update --pids-limit 3 --memory 32m "$id" 2>&1); check "update --pids-limit --memory" "0 $id" "$? $out"
check "update: the guest sees the new memory limit" "32768" \
  "$($DOCKER exec "$id" awk '/^MemTotal/ {print $2}' /proc/meminfo)"
# The state root dockerd gives runsc, from the sandbox process's command line.
spid=$(pgrep -f "sandbox --bundle .*$id" | head -n 1)
sroot=$(tr '\0' '\n' < /proc/"$spid"/cmdline | grep -A1 -x -- --root | tail -n 1)
check "runsc's --root is the one checked at the end" "$RROOT" "$sroot"
stats=$("$RUNSC" --root "$sroot" events --stats "$id" 2>&1)
check "update: events --stats reports the limits" '"limit":33554432 "limit":3' \
  "$(echo "$stats" | grep -o '"limit":[0-9]*' | tr '\n' ' ' | sed 's/ $//')"
# The container's sleep and the exec'd shell are two tasks: the second fork fails.
out=$($DOCKER exec "$id" sh -c 'for i in 1 2 3; do sleep 1 & done; wait' 2>&1)
case "$out" in
  *"Resource temporarily unavailable"*) ok "update: forks past the pids limit fail" ;;
  *) bad "update: forks past the pids limit fail: [$out]" ;;
esac
AWK='awk "BEGIN{s=\"x\"; while(length(s)<64000000) s=s s; print length(s)}"'
check "update: 64 MB don't fit under 32m" "no" \
  "$($DOCKER exec "$id" sh -c "$AWK" 2>/dev/null | grep -q 67108864 && echo yes || echo no)"
$DOCKER update --pids-limit 100 --memory 200m --memory-swap 400m "$id" >/dev/null
check "update: raised past the create-time limit, 64 MB fit" "67108864" \
  "$($DOCKER exec "$id" sh -c "$AWK" 2>&1)"
out=$($DOCKER update --cpu-quota 50000 "$id" 2>&1); rc=$?
case "$rc $out" in
  0*) bad "update --cpu-quota refused: it was taken" ;;
  *cpu.quota*) ok "update --cpu-quota refused, naming cpu.quota" ;;
  *) bad "update --cpu-quota refused, naming cpu.quota: [$out]" ;;
esac
$DOCKER rm -f "$id" >/dev/null

# The sandbox process opens host files only beneath its rootfs and binds (Landlock): `..` of
# each tree it was given is refused (EACCES, 13), directly and through /proc/self/fd/N/..,
# or, for a mount's root (the overlay rootfs), is the tree itself (the old root's mounts are
# detached by the pivot); the trees themselves open.
out=$($DOCKER run --rm --runtime=runsc-landlock-test --network=none -v "$W/host:/data" rbox true 2>&1)
escaped=$(echo "$out" | grep -c -- '\.\. -> ok$')
refused=$(echo "$out" | grep -c -- 'read:\.\. -> errno 13$')
opened=$(echo "$out" | grep -c -- 'read:\. -> ok (the tree itself)$')
check "sandbox under Landlock: .. of a tree refused or itself, each tree opened" \
  "escaped 0, refused >= 2, opened >= 3" \
  "escaped $escaped, $([ "$refused" -ge 2 ] && [ "$opened" -ge 3 ] && echo 'refused >= 2, opened >= 3' || echo "refused $refused, opened $opened: $out")"
# ... and a host file beside the -v bind's directory ($W/daemon.json) is refused.
check "sandbox under Landlock: a host file beside a -v bind refused" "errno 13" \
  "$(echo "$out" | sed -n "s|^runsc: landlock self-test: $W/host read:../daemon.json -> ||p")"

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

# Nothing left: no container state, no sandbox process; dockerd stops.
dockerd_stop_and_check
