#!/usr/bin/env bash
# Builds the Debian packages (r3mapd, r3ctl, libr3d-dev) from this tree into OUTDIR
# (default: packaging/out). The tree is copied, so the checkout stays clean.
#   packaging/build-deb.sh [OUTDIR] [dpkg-buildpackage options...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$root/packaging/out}")
shift || true
work=$(mktemp -d "${TMPDIR:-/tmp}/r3map-deb-XXXXXX")
trap 'rm -rf "$work"' EXIT

src=$work/r3map-0.1.0
mkdir -p "$src"
# Tracked and new files, no build directories.
(cd "$root" && git ls-files -z --cached --others --exclude-standard) | (cd "$root" && xargs -0 cp --parents -t "$src")
cp -r "$root/packaging/debian" "$src/debian"
(cd "$src" && dpkg-buildpackage -b -us -uc "${@:--j2}")
mkdir -p "$out"
mv "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
ls -1 "$out"/*.deb
