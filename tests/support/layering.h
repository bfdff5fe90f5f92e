#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace mesh::testing {

// STYLE.md rule 1: base <- {netplane, runtime} <- agent <- (gRPC) <- cli. Scans every .h/.cc
// under the module directories of `root` and returns one line per #include that reaches a
// module its own module may not depend on, e.g.
//   netplane/network/x.cc:3: netplane may not include "runtime/spec/spec.h"
// Includes of the generated API ("mesh/v1/...") count as the module "proto", allowed in agent
// and cli only. System and third-party includes (<...>) are not checked.
std::vector<std::string> FindLayerViolations(const std::filesystem::path& root);

}  // namespace mesh::testing
