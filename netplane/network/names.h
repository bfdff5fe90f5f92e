#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace mesh::netplane {

// Deterministic kernel object names (STYLE.md rule 9). Recovery finds mesh's links by prefix
// and recomputes them from ids, so these functions are a persisted format: never change the
// hash or the prefixes without a migration.
//
// Linux interface names hold at most 15 bytes (IFNAMSIZ - 1). Every name here is a 4-byte
// prefix plus 11 hex digits (44 bits of a 64-bit FNV-1a hash), exactly 15 bytes. The prefixes
// start with "m" and a letter no common tool uses ("mbr-", "mve-", "mvp-"), so mesh never
// takes a name another program made; a link with one of these prefixes that no record owns is
// an orphan mesh may remove.
inline constexpr size_t kMaxIfNameLength = 15;
inline constexpr absl::string_view kBridgePrefix = "mbr-";
inline constexpr absl::string_view kVethHostPrefix = "mve-";
inline constexpr absl::string_view kVethPeerPrefix = "mvp-";

// 64-bit FNV-1a of `data`: stable across builds, machines and releases.
uint64_t StableHash(absl::string_view data);

// Bridge of network `network`.
std::string BridgeName(absl::string_view network);
// Host end of the veth that attaches `container` to `network` (lives on the bridge).
std::string VethHostName(absl::string_view container, absl::string_view network);
// Container end of that veth, before it is moved into the container's netns and renamed to
// eth0, eth1, ... Deterministic so a crash between create and rename can be cleaned up.
std::string VethPeerName(absl::string_view container, absl::string_view network);

// A name the kernel takes for a link (its dev_valid_name): 1 to 15 bytes, not "." or "..", no
// '/', ':', whitespace or NUL.
bool IsValidIfname(absl::string_view name);

// True if `ifname` has one of mesh's prefixes and the shape above.
bool IsMeshLinkName(absl::string_view ifname);

// A stable, locally administered unicast MAC for `container`'s interface on `network`, so a
// re-created container keeps its MAC and neighbours' ARP caches stay right.
std::array<uint8_t, 6> ContainerMac(absl::string_view container, absl::string_view network);
std::string MacToString(const std::array<uint8_t, 6>& mac);

}  // namespace mesh::netplane
