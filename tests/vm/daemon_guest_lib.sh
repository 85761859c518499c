# The common start of the guest scripts that run r3mapd (dbus_guest.sh, migrate_guest.sh):
# their log to OUT_DIR/guest.log, the integration helpers, the daemon's bus helpers.
#   source daemon_guest_lib.sh OUT_DIR   (sets `here`, the tests/vm folder)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export R3MAP_SOURCE_DIR="$here/../.."
export R3MAP_DBUS_DIR="$R3MAP_SOURCE_DIR/dbus"
exec >"$1/guest.log" 2>&1
source "$here/../integration/lib.sh"
source "$here/../integration/daemon/bus_lib.sh"
source "$here/vm_lib.sh"
