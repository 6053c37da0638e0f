#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run installs the packages first):
#   1. build runsc (release);
#   2. check that docs/syscalls.md matches `runsc syscalls --markdown`;
#   3. cargo test --release --workspace: every crate's unit tests and the
#      differential conformance suite (tests/), which runs each program in
#      tests/conformance/ natively and under `runsc do` and compares;
#   4. the job-control and terminal programs again under `setsid -w` (a new session
#      without a terminal, as some CI runners start jobs): their results must not depend
#      on how the suite was started;
#   5. the conformance suite again on the exit path (RUNSC_NO_DIRECT_SWITCH=1): step 3
#      used PVM's direct switch where the host has it, and both paths must stay right;
#   6. Docker end to end (scripts/docker-e2e.sh), and Docker's networking
#      (scripts/docker-net-e2e.sh: bridge, -p, user networks, in a private namespace).
# Exits non-zero if any step fails (steps 2 to 6 all run either way).
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
runsc="$target/release/runsc"

cargo build --release -p runsc

status=0

# docs/syscalls.md is generated from the sentry's syscall table.
generated="$target/syscalls.md.generated"
if ! "$runsc" syscalls --markdown >"$generated"; then
    echo "FAILED: '$runsc syscalls --markdown' did not run" >&2
    status=1
elif ! diff -u docs/syscalls.md "$generated"; then
    echo "FAILED: docs/syscalls.md is out of date; regenerate it with:" >&2
    echo "    $runsc syscalls --markdown > docs/syscalls.md" >&2
    status=1
else
    echo "docs/syscalls.md is up to date"
fi

if ! [ -c /dev/kvm ] || ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
    echo "************************************************************************" >&2
    echo "* WARNING: /dev/kvm is missing or not read-write for $(id -un):" >&2
    echo "* the conformance tests will print SKIPPED and NOT run the sandbox." >&2
    echo "************************************************************************" >&2
fi

cargo test --release --workspace --no-fail-fast || status=1

if command -v setsid >/dev/null; then
    setsid -w cargo test --release -p conformance --test conformance -- job_control tty_ioctl \
        || status=1
fi

# Step 5: the exit path. Step 3 ran PVM's direct switch where the host has it (the default);
# hosts without it, and RUNSC_NO_DIRECT_SWITCH=1, take the exit path, which must stay right.
RUNSC_NO_DIRECT_SWITCH=1 cargo test --release -p conformance --test conformance || status=1

# Docker end to end (scripts/docker-e2e.sh): a private dockerd with runsc registered as a
# runtime; it prints SKIPPED loudly and passes where dockerd can't start.
scripts/docker-e2e.sh "$runsc" || status=1
scripts/docker-net-e2e.sh "$runsc" || status=1

exit "$status"
