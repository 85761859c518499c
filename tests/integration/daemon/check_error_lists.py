#!/usr/bin/env python3
"""Each D-Bus method's "Errors:" list is the same in the XML and in r3map-dbus(7), and names
every error its implementation can return: every Errc:: in the functions that implement it.

    check_error_lists.py SOURCE_DIR
"""
import re
import sys
import xml.etree.ElementTree as ET

src = sys.argv[1]
known = set(re.findall(r'\{ Errc::\w+, "(\w+)" \}', open(f"{src}/daemon/errors.cpp").read()))
assert len(known) >= 10, known
page = open(f"{src}/man/r3map-dbus.7.scd").read()


def errors_in(text):
    if "Errors:" not in text:
        return None
    return set(re.findall(r"\b(" + "|".join(sorted(known)) + r")\b", text.split("Errors:", 1)[1]))


def man_errors(iface, method):
    section = page.split(f"# org.r3map.{iface}\n", 1)[1].split("\n# ", 1)[0]
    # An entry runs from "*Method*(" to the next line that starts another entry or section.
    entry = re.search(r"^\*" + method + r"\*\(.*?(?=^\*|^#|\Z)", section, re.M | re.S)
    return errors_in(entry.group(0)) if entry else None


def xml_methods(iface):
    return ET.parse(f"{src}/dbus/org.r3map.{iface}.xml").getroot().iter("method")


def xml_errors(iface, method):
    for m in xml_methods(iface):
        if m.get("name") == method:
            return errors_in(" ".join(m.itertext()))
    return None


def body(path, name):
    """Every definition of `name` (its first line at column 0) up to its closing brace."""
    lines = open(f"{src}/{path}").read().split("\n")
    out = []
    for i, line in enumerate(lines):
        if re.match(r"^\S.*\b" + re.escape(name) + r"\(", line) and not line.rstrip().endswith(";"):
            for line in lines[i:]:
                out.append(line)
                if line == "}":
                    break
    assert out, f"{path}: no definition of {name}"
    return "\n".join(out)


admit = [("daemon/service/service_state.cpp", "ServiceState::admit")]
worker = [("daemon/service/async_call.hpp", "complete"), ("daemon/service/async_call.hpp", "runAsync")]
backend = [("daemon/backend_opener.cpp", "openAllowedBackend"), ("daemon/backend_opener.cpp", "checkUnprivileged")]
managed = [
    ("daemon/service/request_options.cpp", "takeManaged"),
    ("daemon/managed_request.cpp", "ManagedRequest::set"),
    ("daemon/managed_opener.cpp", "resolveCacheDir"),
    ("daemon/managed_opener.cpp", "checkWritable"),
    ("daemon/managed_opener.cpp", "regionError"),
    ("daemon/managed_opener.cpp", "openManagedRegion"),
]
implementations = {
    ("Manager1", "Mount"): admit + worker + backend + managed + [
        ("daemon/mount_manager.cpp", "MountManager::mount"),
        ("daemon/mount_manager.cpp", "MountManager::mountEntry"),
        ("daemon/kernel_attach.cpp", "attachError"),
        ("daemon/kernel_attach.cpp", "kernelAttach"),
    ],
    ("Manager1", "Export"): admit + worker + backend + managed + [
        ("daemon/export_manager.cpp", "ExportManager::start"),
        ("daemon/export_manager.cpp", "ExportManager::serve"),
        ("daemon/export_manager.cpp", "nbdTls"),
        ("daemon/nbd_export.cpp", "NbdExport::listen"),
        ("daemon/errors.hpp", "failListen"),
        ("daemon/r3_security.cpp", "R3Security::apply"),
        ("daemon/export_manager.cpp", "shareSocket"),
    ],
    ("Manager1", "Seed"): admit + worker + backend + [
        ("daemon/service/manager_object.cpp", "ManagerObject::Seed"),
        ("daemon/service/request_options.cpp", "seedRequest"),
        ("daemon/migration_manager.cpp", "MigrationManager::seed"),
        ("daemon/migration_manager.cpp", "serveNbd"),
        ("daemon/r3_security.cpp", "R3Security::apply"),
        ("daemon/nbd_export.cpp", "NbdExport::listen"),
        ("daemon/errors.hpp", "failListen"),
    ],
    ("Manager1", "Pull"): admit + worker + [
        ("daemon/service/manager_object.cpp", "ManagerObject::Pull"),
        ("daemon/service/request_options.cpp", "pullRequest"),
        ("daemon/service/request_options.cpp", "downtimeOption"),
        ("daemon/service/request_options.cpp", "roundsOption"),
        ("daemon/service/request_options.cpp", "finalizeOption"),
        ("daemon/migration_manager.cpp", "MigrationManager::pull"),
        ("daemon/migration_manager.cpp", "serveNbd"),
        ("daemon/nbd_export.cpp", "NbdExport::listen"),
        ("daemon/errors.hpp", "failListen"),
    ],
    ("Migration1", "Finalize"): admit + worker + [("daemon/migration_manager.cpp", "MigrationManager::finalize")],
    ("Migration1", "Cancel"): admit + worker + [("daemon/migration_manager.cpp", "MigrationManager::cancel")],
    ("Migration1", "AnswerFinalize"): admit + worker + [("daemon/migration_manager.cpp", "MigrationManager::answerFinalize")],
    ("Manager1", "StartSync"): admit + worker + [
        ("daemon/service/manager_object.cpp", "ManagerObject::StartSync"),
        ("daemon/service/manager_object.cpp", "syncsHere"),
        ("daemon/service/request_options.cpp", "syncStartRequest"),
        ("daemon/service/request_options.cpp", "intervalOption"),
        ("daemon/sync_manager.cpp", "SyncManager::start"),
        ("daemon/sync_manager.cpp", "SyncManager::sourcePath"),
        ("daemon/sync_manager.cpp", "checkRoot"),
        ("daemon/sync_manager.cpp", "destination"),
    ],
    ("Manager1", "ServeSync"): admit + worker + [
        ("daemon/service/manager_object.cpp", "ManagerObject::ServeSync"),
        ("daemon/service/manager_object.cpp", "syncsHere"),
        ("daemon/service/request_options.cpp", "syncServeRequest"),
        ("daemon/service/request_options.cpp", "applyModeOption"),
        ("daemon/service/request_options.cpp", "checkListen"),
        ("daemon/sync_manager.cpp", "SyncManager::serve"),
        ("daemon/sync_manager.cpp", "checkRoot"),
        ("daemon/sync_manager.cpp", "checkDirectory"),
        ("daemon/r3_security.cpp", "R3Security::apply"),
        ("daemon/errors.hpp", "failListen"),
    ],
    ("Manager1", "StartSyncHub"): admit + worker + [
        ("daemon/service/manager_object.cpp", "ManagerObject::StartSyncHub"),
        ("daemon/service/manager_object.cpp", "syncsHere"),
        ("daemon/service/request_options.cpp", "syncHubRequest"),
        ("daemon/service/request_options.cpp", "checkListen"),
        ("daemon/sync_manager.cpp", "SyncManager::serve"),
        ("daemon/sync_manager.cpp", "checkRoot"),
        ("daemon/sync_manager.cpp", "checkDirectory"),
        ("daemon/sync_manager.cpp", "destination"),
        ("daemon/r3_security.cpp", "R3Security::apply"),
        ("daemon/errors.hpp", "failListen"),
    ],
    ("Sync1", "SyncNow"): admit + worker + [("daemon/sync_manager.cpp", "SyncManager::syncNow")],
    ("Sync1", "Stop"): admit + worker + [("daemon/sync_manager.cpp", "SyncManager::stop")],
    ("Manager1", "SetLogLevel"): admit,
    ("Mount1", "OpenFd"): admit + worker + [("daemon/mount_manager.cpp", "MountManager::openFd")],
    ("Mount1", "Unmount"): admit + worker + [
        ("daemon/mount_manager.cpp", "MountManager::unmount"),
    ],
    ("Mount1", "UnmountWithOptions"): admit + worker + [
        ("daemon/service/request_options.cpp", "unmountOptions"),
        ("daemon/mount_manager.cpp", "MountManager::unmount"),
    ],
    ("Export1", "Stop"): admit + worker + [("daemon/export_manager.cpp", "ExportManager::stop")],
    ("Export1", "StopWithOptions"): admit + worker + [
        ("daemon/service/request_options.cpp", "stopOptions"),
        ("daemon/export_manager.cpp", "ExportManager::stop"),
    ],
    ("Managed1", "Sync"): admit + worker + [
        ("daemon/mount_manager.cpp", "MountManager::sync"),
        ("daemon/export_manager.cpp", "ExportManager::sync"),
    ],
    ("Region1", "Sync"): admit + worker + [
        ("daemon/region_manager.cpp", "RegionManager::owned"),
        ("daemon/region_manager.cpp", "RegionManager::sync"),
    ],
    ("Region1", "Unmap"): admit + worker + [
        ("daemon/region_manager.cpp", "RegionManager::owned"),
        ("daemon/region_manager.cpp", "RegionManager::unmap"),
    ],
}

problems = []
for (iface, method), functions in implementations.items():
    man, xml = man_errors(iface, method), xml_errors(iface, method)
    if man is None or xml is None:
        problems.append(f"{iface}.{method}: no Errors: list in {'r3map-dbus(7)' if man is None else 'the XML'}")
        continue
    if man != xml:
        problems.append(f"{iface}.{method}: r3map-dbus(7) lists {sorted(man)}, the XML {sorted(xml)}")
    code = set()
    for path, name in functions:
        code |= set(re.findall(r"Errc::(\w+)", body(path, name)))
    if code - man:
        problems.append(f"{iface}.{method}: can return {sorted(code - man)}, which its documentation does not list")

# A method with an error list that this script does not know is not checked: say so.
for iface in ("Manager1", "Mount1", "Export1", "Managed1", "Region1", "Migration1", "Sync1"):
    for m in xml_methods(iface):
        if xml_errors(iface, m.get("name")) is not None and (iface, m.get("name")) not in implementations:
            problems.append(f"{iface}.{m.get('name')}: {sys.argv[0]} does not know its implementation")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
