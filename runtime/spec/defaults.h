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

// The default process capabilities: bounding = permitted = effective = `caps`; inheritable
// and ambient empty.
CapabilitySets CapabilitiesFrom(const std::vector<std::string>& caps);

// Fills what the caller left unset with the hardened defaults: capabilities (unless any set
// is given), masked and read-only paths (unless privileged), new pid, mount, uts, ipc,
// cgroup and network namespaces (unless listed), cwd "/", hostname = id.
ContainerSpec WithDefaults(ContainerSpec spec);

}  // namespace mesh::runtime
