# Shared by the vm test scripts (host side and guest side).

# The kernel NBD tests of guest-tests.sh, in the order they run. "swap" is not among them:
# it boots a guest of its own with little RAM (meson test vm_swap, suite vm), so that
# going beyond the guest's RAM stays short under TCG.
guest_tests=(memory_ext4 file_persistence mounted_sigterm flush_trim concurrent_attach busy_device multi_conn
	netlink_commands request_cap link_dead methods kill9)

# dev_free /dev/nbdN: the kernel has let go of the device (no pid, size 0). Guest side.
dev_free() {
	local sys="/sys/block/$(basename "$1")"
	[ ! -e "$sys/pid" ] && [ "$(cat "$sys/size")" = 0 ]
}

# vm_preflight: exit 77 (skip) when qemu-system-x86_64 is missing, fail unless root.
vm_preflight() {
	if ! command -v qemu-system-x86_64 >/dev/null; then
		echo "SKIP: qemu-system-x86_64 is not installed (scripts/bootstrap.sh installs it)"
		exit 77
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "FAIL: the vm tests share the host's root with the guest and need root" >&2
		exit 1
	fi
}
