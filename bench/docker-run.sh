#!/usr/bin/env bash
# `docker run --rm IMG true` with runc and with runsc, in one private dockerd (own data root,
# exec root, socket; scripts/lib/dockerd.sh), runs interleaved so both runtimes see the same
# machine load; then the memory of an idle `sleep` container under each. `bench --docker`
# runs this and prints the medians and ratios.
#
#   bench/docker-run.sh RUNSC [RUNS]
#
# Prints one "sample RUNTIME MICROSECONDS" line per run, then "rss RUNTIME KB" (the host
# process that stands for the container: the program under runc, the sandbox under runsc).
# Prints "SKIPPED: ..." and exits 0 where Docker can't run here (no dockerd, not root).
set -u
RUNSC=$(readlink -f "${1:?usage: docker-run.sh RUNSC [RUNS]}")
RUNS=${2:-9}
NAME=docker-bench
. "$(dirname "$0")/../scripts/lib/dockerd.sh"
dockerd_start -- --bridge=none --iptables=false --ip6tables=false --ip-masq=false
make_rbox
run() { $DOCKER run --rm --runtime="$1" --network=none rbox true; }
if ! run runc >/dev/null 2>&1; then
  echo "SKIPPED: $NAME: runc can't run a container here"; exit 0
fi
# One unmeasured run of runsc too: the first start pays for cold caches.
run runsc || { echo "$NAME: runsc failed to run a container" >&2; exit 1; }
for _ in $(seq "$RUNS"); do
  for rt in runc runsc; do
    s=$(date +%s%N); run $rt || { echo "$NAME: $rt failed" >&2; exit 1; }; e=$(date +%s%N)
    echo "sample $rt $(( (e - s) / 1000 ))"
  done
done
for rt in runc runsc; do
  id=$($DOCKER run -d --runtime=$rt --network=none rbox sleep 1000)
  sleep 1
  pid=$($DOCKER inspect -f '{{.State.Pid}}' "$id")
  echo "rss $rt $(awk '/^VmRSS/ {print $2}' /proc/"$pid"/status)"
  $DOCKER rm -f "$id" >/dev/null
done
