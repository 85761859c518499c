#!/usr/bin/env bash
# Prepares the test guest from Debian packages only and prints its directory:
#   vmlinux      uncompressed kernel of linux-image-amd64's current 6.1 package (PVH entry)
#   initrd.gz    busybox-static + the modules the tests need + guest-init.sh
#   udev/        the udev package unpacked (systemd-udevd for the udev readiness tests)
# The result is cached in ${XDG_CACHE_HOME:-~/.cache}/r3map/vm/<package>_<version>-<hash
# of this script and guest-init.sh>, so a second run costs nothing. Nothing is installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache_root="${R3_VM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/r3map/vm}"
mkdir -p "$cache_root"

log() { echo "prepare-guest: $*" >&2; }

# Modules to load, in dependency order (modprobe resolves it from the package's tree).
modules=(nbd ext4 9pnet_virtio 9p virtio_pci virtio_blk veth sch_netem)

kernel_package() {
	apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-6/ { print $2; exit }'
}

kpkg="$(kernel_package)"
if [ -z "$kpkg" ]; then
	log "apt knows no linux-image-amd64; running apt-get update"
	apt-get update -qq >&2
	kpkg="$(kernel_package)"
fi
[ -n "$kpkg" ] || { log "cannot find the Debian kernel package"; exit 1; }
kver="${kpkg#linux-image-}"
pkgversion="$(apt-cache policy "$kpkg" | awk '/Candidate:/ { print $2 }')"
hash="$(cat "$0" "$here/guest-init.sh" | sha256sum | cut -c1-12)"
dir="$cache_root/${kpkg}_${pkgversion}-$hash"

exec 9>"$cache_root/.lock"
flock 9
# Preparations nobody used for a week go; others may belong to a run in progress (another
# checkout of the tree has other scripts, hence another hash).
find "$cache_root" -mindepth 2 -maxdepth 2 -name last-used -mtime +7 -printf '%h\n' | xargs -r rm -rf
# Under the lock no preparation is in progress: anything half-built was left by a kill.
find "$cache_root" -mindepth 1 -maxdepth 1 \( -name '.work-*' -o -name '*.new' \) -exec rm -rf {} +
if [ -f "$dir/ready" ]; then
	touch "$dir/last-used"
	echo "$dir"
	exit 0
fi

work="$(mktemp -d "$cache_root/.work-XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"

download() {
	local pkg="$1"
	# apt's sandbox user cannot write to a root-owned temp dir; the download is still verified.
	if ! apt-get download -q "$pkg" >/dev/null 2>&1; then
		log "apt-get download $pkg failed; running apt-get update and retrying"
		apt-get update -qq >&2
		apt-get download -q "$pkg" >&2
	fi
	ls "$work"/"${pkg}"_*.deb
}

log "downloading $kpkg $pkgversion"
kdeb="$(download "$kpkg")"
dpkg -x "$kdeb" kx

# vmlinuz is a bzImage whose payload is one xz stream; QEMU boots the ELF inside via PVH,
# which under TCG is twice as fast as running the decompressor.
offset="$(LC_ALL=C grep -obUaP -m1 '\xfd7zXZ\x00' "kx/boot/vmlinuz-$kver" | cut -d: -f1 || true)"
[ -n "$offset" ] || { log "no xz payload in vmlinuz-$kver"; exit 1; }
tail -c +"$((offset + 1))" "kx/boot/vmlinuz-$kver" > payload.xz
xz -dc --single-stream < payload.xz > vmlinux

depmod -b kx "$kver"
mkdir -p root/bin root/dev root/proc root/sys root/lib/modules
: > root/modules.order
declare -A seen=()
for m in "${modules[@]}"; do
	while read -r verb path _; do
		[ "$verb" = insmod ] || continue
		name="$(basename "$path")"
		[ -z "${seen[$name]:-}" ] || continue
		seen[$name]=1
		cp "$path" root/lib/modules/
		args=""
		[ "$name" = nbd.ko ] && args="nbds_max=8"
		echo "$name $args" >> root/modules.order
	done < <(modprobe -d "$work/kx" -S "$kver" --show-depends "$m")
done

cp /bin/busybox root/bin/
for applet in $(/bin/busybox --list); do
	[ -e "root/bin/$applet" ] || ln -s busybox "root/bin/$applet"
done
ln -s bin root/sbin
cp "$here/guest-init.sh" root/init
chmod +x root/init
(cd root && find . | cpio -o -H newc --quiet | gzip -1 > ../initrd.gz)

log "downloading udev"
udeb="$(download udev)"
dpkg -x "$udeb" udev

mkdir -p "$dir.new"
mv vmlinux initrd.gz udev "$dir.new/"
echo "$kpkg $pkgversion" > "$dir.new/ready"
touch "$dir.new/last-used"
rm -rf "$dir"
mv "$dir.new" "$dir"
log "prepared $dir"
echo "$dir"
