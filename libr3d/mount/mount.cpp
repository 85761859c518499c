#include "mount/mount.hpp"

namespace r3d::mount {

const char *kindName(MountKind kind)
{
	switch (kind) {
	case MountKind::Direct:
		return "direct";
	case MountKind::Managed:
		return "managed";
	case MountKind::Region:
		return "region";
	}
	return "direct";
}

} // namespace r3d::mount
