#!/usr/bin/env bash
# Builds the Debian bookworm minbase root that tests/tests/debian_image.rs converts and runs:
# `$CARGO_TARGET_DIR/debian/bookworm-minbase.tar.gz` (or target/...), made once with
# debootstrap from Debian's mirror ($DEBIAN_MIRROR) and kept. Needs root and debootstrap.
# The test is skipped, loudly, while the tarball is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
out="$target/debian/bookworm-minbase.tar.gz"
if [ -s "$out" ]; then
    echo "$out: already built"
    exit 0
fi
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$target/debian"
work=$(mktemp -d "$target/debian/.build.XXXXXX")
cleanup() {
    # Never remove a tree something is still mounted in.
    if grep -qF " $(realpath "$work")/" /proc/mounts; then
        echo "leaving $work: something is mounted in it" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
debootstrap --variant=minbase bookworm "$work/root" "$mirror"
# What changes from one run to the next and no test looks at.
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/log/"*.log \
    "$work/root/var/cache/ldconfig/aux-cache"
tar --numeric-owner --xattrs --xattrs-include='*' -C "$work/root" -czf "$work/root.tar.gz" .
mv "$work/root.tar.gz" "$out"
echo "$out: $(du -h "$out" | cut -f1)"
