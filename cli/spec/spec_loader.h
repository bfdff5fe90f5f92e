#pragma once

// meshctl's group spec loader: a YAML file (docs/spec.md) -> mesh.v1.GroupSpec, plus where in
// the file each field came from.
//
// The loader checks everything about the text: YAML syntax, keys (unknown ones get a "did you
// mean"), duplicates, kinds (list, map, string), required keys, the notations of scalars
// (ports, sizes, durations, CPUs, restart policies, booleans, numbers, command lines), env
// files, references between members that it can see (networks, depends_on, network_mode),
// dependency cycles, and what a document may cost (size, depth, node count with aliases
// expanded). It reports every problem at once, in document order, as INVALID_ARGUMENT with one
// "file:line:column: message" per line, and never returns part of a spec.
//
// Semantic rules (names, addresses, overlapping subnets, capabilities, port clashes, ...) are
// meshd's: its Apply validation is the one authority for them. Its errors name API fields;
// SourceMap::Locate puts them at their place in the file.

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/spec/source_map.h"
#include "cli/spec/yaml_tree.h"
#include "mesh/v1/groups.pb.h"

namespace mesh::cli {

struct LoadedSpec {
  v1::GroupSpec spec;
  SourceMap sources;
};

struct SpecLimits {
  YamlLimits yaml;
  // Bytes of one env_file.
  size_t max_env_file_bytes = size_t{1} << 20;
  // Problems listed; the rest are counted in a last line.
  size_t max_errors = 100;
};

struct SpecOptions {
  // The directory relative paths (bind mount sources, env_file) are resolved against; empty:
  // the directory of `file_name`, made absolute against the working directory.
  std::string base_dir;
  SpecLimits limits;
};

// Loads the spec in `yaml`; `file_name` is what messages and SourcePositions call the file.
// Reads env files from the file system.
absl::StatusOr<LoadedSpec> ParseSpec(absl::string_view yaml, absl::string_view file_name,
                                     const SpecOptions& options = {});

// Reads and loads the file at `path` ("-": standard input, relative paths against the working
// directory). A file that cannot be read keeps its errno's code (NOT_FOUND, PERMISSION_DENIED);
// a file larger than the limit is INVALID_ARGUMENT without being read whole.
absl::StatusOr<LoadedSpec> LoadSpecFile(const std::string& path, const SpecLimits& limits = {});

}  // namespace mesh::cli
