#pragma once

// mesh's hardened defaults (../shared/TESTING.md "Hardened defaults"), as spec values.

#include <string>
#include <vector>

#include "runtime/spec/spec.h"

namespace mesh::runtime {

// Docker's and containerd's default set of 14 capabilities.
const std::vector<std::string>& DefaultCapabilities();
// The strict profile: Podman's 11 (the default set without MKNOD, NET_RAW and AUDIT_WRITE).
const std::vector<std::string>& StrictCapabilities();
// Docker's masked paths (/dev/null over files, read-only tmpfs over directories).
const std::vector<std::string>& DefaultMaskedPaths();
// Docker's read-only /proc paths.
const std::vector<std::string>& DefaultReadonlyPaths();

// The device cgroup rules (OCI linux.resources.devices): deny every device, then allow
// exactly the devices of the container's /dev (rootfs DefaultDevices): c 1:3 null, 1:5 zero,
// 1:7 full, 1:8 random, 1:9 urandom, 5:0 tty, 5:2 ptmx (devpts' ptmx node) and 136:* (the
// ptys, /dev/console included, which is a pty bound over it) with "rwm". No wildcard mknod
// (runc allows "c *:* m" and "b *:* m"). `privileged`: every device ("a" allowed).
std::vector<DeviceRule> DefaultDeviceRules(bool privileged);

// The default process capabilities: bounding = permitted = effective = `caps`; inheritable
// and ambient empty.
CapabilitySets CapabilitiesFrom(const std::vector<std::string>& caps);

// Fills what the caller left unset with the hardened defaults: capabilities
// (CapabilitiesFrom(DefaultCapabilities()) when process.capabilities is unset; a set value,
// even one with all five sets empty, stays as it is), masked and read-only paths (unless
// privileged), device rules (unless any is given; DefaultDeviceRules), new pid, mount, uts,
// ipc, cgroup and network namespaces (unless listed), cwd "/", hostname = id.
ContainerSpec WithDefaults(ContainerSpec spec);

}  // namespace mesh::runtime
