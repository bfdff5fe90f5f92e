#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mesh::runtime {

// Which cgroup hierarchies a host mounts, read from /proc/self/mountinfo. Hosts come in three
// shapes: pure v2 (one cgroup2 mount with every controller), pure v1 (one "cgroup" mount per
// controller or controller set) and hybrid (v1 controllers plus a cgroup2 mount that holds
// few or none, as systemd's "hybrid" mode and this project's CI machines do).
struct CgroupLayout {
  // v1 controller ("cpu", "memory", "pids", "name=systemd", ...) -> its mount point. A mount
  // carrying several controllers ("cpu,cpuacct") appears once per controller.
  std::map<std::string, std::string> v1;
  // Mount point of the cgroup2 hierarchy, if mounted.
  std::optional<std::string> v2;

  // True if the v1 hierarchy provides `controller`.
  bool HasV1(absl::string_view controller) const { return v1.contains(std::string(controller)); }
};

// Parses the text of a mountinfo file (proc(5)). Mount points are unescaped ("\040" -> " ").
// InvalidArgument naming the line on malformed input; a file with no cgroup mounts gives an
// empty layout.
absl::StatusOr<CgroupLayout> ParseCgroupLayout(absl::string_view mountinfo);

}  // namespace mesh::runtime
