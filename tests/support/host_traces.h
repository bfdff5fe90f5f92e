#pragma once

// What of the kernel and of its state and run dirs mesh may leave behind, for leak checks in
// integration tests that drive meshd: links of the sandbox host, mesh's pinned network
// namespaces, container run and state dirs, the containers' cgroups and the elements of the
// nftables sets (the tables themselves stay once made). Sorted lines, comparable as strings;
// independent of mesh's own code (iproute2, nft and the file system).

#include <string>

#include "absl/strings/string_view.h"
#include "tests/support/sandbox.h"

namespace mesh::testing {

// The traces now. `cgroup_parent` is meshd's --cgroup-parent: the cgroups listed are its
// children.
std::string MeshTracesNow(const Sandbox& sandbox, absl::string_view cgroup_parent);

// The traces once the background deletion of detached veth pairs (and of their cut-off
// entries) is done: no "mve-" link left and the same twice 100 ms apart, or after 3 s.
std::string MeshTraces(const Sandbox& sandbox, absl::string_view cgroup_parent);

}  // namespace mesh::testing
