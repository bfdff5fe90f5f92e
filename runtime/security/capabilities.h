#pragma once

// Linux capabilities: names, masks, Docker's cap_add / cap_drop, and what the runtime itself
// holds (a child can never get more). Applying them to a process is PreparedSecurity's job
// (process_security.h). The semantics mesh follows are written down in docs/security.md.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/spec/spec.h"

namespace mesh::runtime::security {

// A capability set as the kernel stores it: bit N is capability N.
using CapMask = uint64_t;

// The highest capability the kernel headers mesh was built with know (CAP_LAST_CAP: 40,
// CAP_CHECKPOINT_RESTORE). The running kernel may know fewer: see RuntimeCapabilities.
int LastKnownCapability();

// Every capability the headers know (bits 0..LastKnownCapability()).
CapMask AllCapabilities();

// Parses one capability name. The rule (Docker's --cap-add rule): case-insensitive, the "CAP_"
// prefix optional. "CAP_NET_RAW", "cap_net_raw", "NET_RAW" and "net_raw" all name 13. "ALL" is
// not a capability here (only ApplyCapabilityChanges understands it). InvalidArgument that
// quotes `name` otherwise.
absl::StatusOr<int> ParseCapability(absl::string_view name);

// The canonical name, "CAP_NET_RAW" for 13; "" for a number the headers do not know.
absl::string_view CapabilityName(int cap);

// The mask of `names`. InvalidArgument on an unknown name; `set` ("effective") names the set
// in the message when given.
absl::StatusOr<CapMask> CapabilityMask(const std::vector<std::string>& names,
                                       absl::string_view set = "");

// Canonical names of the bits of `mask`, in number order (bits above the headers' last
// capability are left out).
std::vector<std::string> CapabilityNames(CapMask mask);

// A mask as /proc/PID/status prints it: 16 hex digits, "00000000a80425fb".
std::string FormatCapMask(CapMask mask);

// The five sets of spec's CapabilitySets (OCI process.capabilities) as masks.
struct CapabilityMasks {
  CapMask bounding = 0;
  CapMask effective = 0;
  CapMask inheritable = 0;
  CapMask permitted = 0;
  CapMask ambient = 0;
  bool operator==(const CapabilityMasks&) const = default;
};

// InvalidArgument naming the set and the capability when a name is unknown.
absl::StatusOr<CapabilityMasks> ToMasks(const CapabilitySets& sets);
CapabilitySets ToSets(const CapabilityMasks& masks);

// Docker's cap_add / cap_drop rules over `base` (e.g. DefaultCapabilities() or
// StrictCapabilities() of runtime/spec/defaults.h), names parsed as ParseCapability does,
// "ALL" (any case) understood in both lists:
//   - cap_add holds ALL: every known capability except those in cap_drop;
//   - else cap_drop holds ALL: exactly cap_add;
//   - else (base minus cap_drop) plus cap_add (a capability in both lists is added).
// The result is canonical names in number order, without duplicates. InvalidArgument quoting
// the first unknown name (and the list it came from).
absl::StatusOr<std::vector<std::string>> ApplyCapabilityChanges(
    const std::vector<std::string>& base, const std::vector<std::string>& cap_add,
    const std::vector<std::string>& cap_drop);

// The OCI process capabilities for Docker's cap_add / cap_drop over `base`: bounding =
// permitted = effective = ApplyCapabilityChanges(base, cap_add, cap_drop), inheritable and
// ambient empty, for every user: Docker's shape since moby#45511 (Docker 24.0.6 and 25.0; the
// user does not change the sets, and Docker never sets ambient). The single place where mesh
// turns cap_add / cap_drop into sets. An empty result (cap_drop ALL, nothing added) is five
// empty sets: no capability at all. What the process then holds after execve is the kernel's
// rule (capabilities(7)):
//   - uid 0: permitted = effective = bounding, i.e. exactly the result;
//   - any other uid: the result stays in bounding, but a program without file capabilities
//     starts with empty permitted and effective sets (ambient is empty), so a non-root user
//     gets no capability from cap_add alone, as in Docker. A program with file capabilities
//     gets those the result holds, under no_new_privs too: the kernel limits what such an
//     execve grants to the permitted set before it, which holds the result (why Docker stopped
//     emptying permitted and effective for non-root users, moby#45491).
// A spec that wants a non-root process to keep a capability across every execve lists it in
// inheritable, permitted and ambient itself (OCI); Prepare applies such sets as given.
// InvalidArgument as ApplyCapabilityChanges.
absl::StatusOr<CapabilitySets> ContainerCapabilities(const std::vector<std::string>& base,
                                                     const std::vector<std::string>& cap_add,
                                                     const std::vector<std::string>& cap_drop);

// What the calling process (the runtime) can hand to a child. A child inherits these and can
// only lose capabilities, so Prepare() refuses a spec that asks for more, before any fork.
struct RuntimeCapabilities {
  // min(LastKnownCapability(), /proc/sys/kernel/cap_last_cap).
  int last_cap = 0;
  CapMask bounding = 0;
  CapMask permitted = 0;
  CapMask effective = 0;
};

// Reads the calling thread's sets (capget, PR_CAPBSET_READ) and the kernel's last capability.
absl::StatusOr<RuntimeCapabilities> ReadRuntimeCapabilities();

}  // namespace mesh::runtime::security
