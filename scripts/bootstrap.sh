#!/usr/bin/env bash
# Installs what r3map needs on Debian 12, then configures and builds it in ./build.
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # build
  meson ninja-build g++ pkg-config libboost-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  catch2 scdoc
  # the peers the tests and benchmarks drive: NBD clients and servers, iperf3, rsync (the sync benchmark)
  nbdkit libnbd-bin python3-libnbd qemu-utils fio iperf3 rsync
  # the benchmark report (plots) and its gRPC baseline (-Dgrpc_bench)
  python3-matplotlib libgrpc++-dev protobuf-compiler-grpc nbdkit-plugin-dev
  # NBD over TLS tests: psktool makes the PSK files libnbd, qemu and r3serve --tls-psk read
  gnutls-bin
  # fuzzing (libFuzzer)
  clang libclang-rt-14-dev
  # transport (protobuf, TLS), redis and s3 backends, WAN emulation
  libprotobuf-dev protobuf-compiler libssl-dev openssl libhiredis-dev libcurl4-openssl-dev
  libnetfilter-queue-dev redis-server redis-tools iproute2 iptables
  # push sync (r3sync): XXH3-128 chunk hashes, zstd chunk payloads
  libxxhash-dev libzstd-dev
  # r3mapd, r3ctl and their tests: D-Bus, systemd, a private bus, packaging
  libsdbus-c++-dev libsdbus-c++-bin libsystemd-dev dbus dbus-bin libglib2.0-bin python3 python3-dbus systemd
  debhelper dpkg-dev fakeroot
  # kernel NBD attach, and the QEMU guest of the vm suite (its kernel is downloaded at test time)
  libudev-dev qemu-system-x86 busybox-static cpio kmod xz-utils e2fsprogs
  # the examples (the SQLite one opens a database through nbdfuse, part of libnbd-bin)
  sqlite3
)
# npm installs s3rver below. Node.js may come from elsewhere (e.g. NodeSource, which bundles
# npm and conflicts with Debian's npm): take Debian's only when there is no npm at all.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bootstrap: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# s3rver, the S3 server the s3:// tests run against, pinned, outside the source tree.
npm_cache="${R3_NPM_CACHE:-$HOME/.cache/r3map/npm}"
if ! grep -qs '"version": "3.7.1"' "$npm_cache/node_modules/s3rver/package.json"; then
  mkdir -p "$npm_cache"
  (cd "$npm_cache" && npm install --no-audit --no-fund --loglevel=error s3rver@3.7.1 >/dev/null) ||
    echo "bootstrap: could not install s3rver; the s3:// tests will be skipped" >&2
fi

[ -f build/build.ninja ] || meson setup build
ninja -C build
