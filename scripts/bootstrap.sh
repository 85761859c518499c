#!/usr/bin/env bash
# Installs what r3map needs on Debian 12, then configures and builds it in ./build.
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # build
  meson ninja-build g++ pkg-config libboost-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  catch2 scdoc
  # NBD peers the tests and benchmarks drive
  nbdkit libnbd-bin python3-libnbd qemu-utils fio iperf3
  # fuzzing (libFuzzer)
  clang libclang-rt-14-dev
  # r3mapd, r3ctl and their tests: D-Bus, systemd, a private bus, packaging
  libsdbus-c++-dev libsdbus-c++-bin libsystemd-dev dbus dbus-bin libglib2.0-bin python3 systemd
  debhelper dpkg-dev fakeroot
  # kernel NBD attach, and the QEMU guest of the vm suite (its kernel is downloaded at test time)
  libudev-dev qemu-system-x86 busybox-static cpio kmod xz-utils e2fsprogs
)

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

[ -f build/build.ninja ] || meson setup build
ninja -C build
