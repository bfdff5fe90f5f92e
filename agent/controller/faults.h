#pragma once

// Fault injection for the crash-consistency tests (TESTING.md #13, #16): with
// MESH_FAULT_AFTER=<point> in its environment, meshd kills itself with SIGKILL right after
// that step, as `kill -9` would at that moment. Unset (always, outside tests): a no-op.

#include <array>

#include "absl/strings/string_view.h"

namespace mesh::agent {

// Every point, in the order the operations pass them.
inline constexpr std::array<absl::string_view, 15> kFaultPoints = {
    "container.create.recorded",  // the CREATING record is written
    "container.create.netns",     // the network namespace is pinned
    "container.create.attached",  // every network is attached (record not yet updated)
    "container.create.runtime",   // the runtime container exists
    "container.create.ready",     // the READY record is written
    "container.start.started",    // the command runs (record not yet updated)
    "container.remove.recorded",  // the REMOVING record is written
    "container.remove.runtime",   // the runtime container is deleted
    "container.remove.detached",  // every network is detached
    "network.create.recorded",    // the CREATING record is written
    "network.create.kernel",      // bridge and nftables entries exist
    "network.remove.recorded",    // the REMOVING record is written
    "network.remove.kernel",      // the bridge is gone
    "group.apply.recorded",       // the group's record (new spec) is written
    "group.apply.member",         // one member was created or removed
};

// Dies with SIGKILL if MESH_FAULT_AFTER names `point` (read once, at the first call).
void FaultPoint(absl::string_view point);

}  // namespace mesh::agent
