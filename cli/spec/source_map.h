#pragma once

// Where each field of a loaded spec came from, so that meshd's errors (which name API fields:
// `spec.containers[1].spec.ports[0].host_port: 70000 is not a port (1-65535)`) can be shown
// at their place in the YAML file.

#include <cstddef>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace mesh::cli {

struct SourcePosition {
  std::string file;
  int line = 0;  // 1-based
  int column = 0;
  bool operator==(const SourcePosition&) const = default;
};

class SourceMap {
 public:
  // Records where the field at `path` was set. Paths are spelled as meshd's validation spells
  // them (agent/api/convert.h): "spec.name", "spec.networks[0].subnet",
  // "spec.containers[1].spec.ports[0].host_port", "spec.containers[1].depends_on[0].condition",
  // `spec.labels.labels["app"]`. The first position recorded for a path stays.
  void Add(std::string path, SourcePosition position);

  // The position of exactly `path`, or nullopt.
  std::optional<SourcePosition> Find(absl::string_view path) const;

  // The position of the longest recorded prefix of `path` that ends at a field boundary ('.'
  // or '['): "spec.containers[0].spec.resources.cpus" falls back to
  // "spec.containers[0].spec.resources", then to "spec.containers[0].spec", and so on.
  std::optional<SourcePosition> FindNearest(absl::string_view path) const;

  // For a message of meshd that names a field path (at its start, or after other text such as
  // "apply group: "): "file:line:column: message", at the nearest recorded field. Any other
  // message comes back unchanged.
  std::string Locate(absl::string_view message) const;

  size_t size() const { return positions_.size(); }
  const std::map<std::string, SourcePosition, std::less<>>& positions() const { return positions_; }

 private:
  std::map<std::string, SourcePosition, std::less<>> positions_;
};

}  // namespace mesh::cli
