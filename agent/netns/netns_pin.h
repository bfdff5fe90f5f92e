#pragma once

// Network namespaces that outlive the processes in them: a container's netns is made by meshd
// and pinned by a bind mount at <run_dir>/netns/<container> (as `ip netns add` and Podman do),
// so its interfaces, addresses and published ports stay while the container stops, restarts
// or meshd itself restarts, and recovery finds them by name (DESIGN.md decision 3).

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mesh::agent {

// Makes a new network namespace with its loopback up and pins it at `path` (created; its
// directory must exist). AlreadyExists if a namespace is pinned there already.
absl::Status PinNewNetns(const std::string& path);
// Unmounts and removes the pin; the namespace goes once nothing else holds it. OK if there is
// no pin at `path`.
absl::Status UnpinNetns(const std::string& path);
// True if a network namespace is pinned at `path`.
bool IsPinnedNetns(const std::string& path);
// Names of the files in `dir` (pinned or not; a crash may leave an empty file).
std::vector<std::string> ListPinFiles(const std::string& dir);

}  // namespace mesh::agent
