#pragma once

// What `exec` runs in a running container (a process of its own, beside PID 1).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/spec/spec.h"

namespace mesh::runtime {

struct ExecSpec {
  std::vector<std::string> args;
  std::vector<std::string> env;  // empty: the container's
  std::string cwd;               // empty: the container's
  std::optional<User> user;      // unset: the container's
  bool terminal = false;
  uint16_t rows = 24;
  uint16_t cols = 80;
};
// A terminal size, as written to Runtime::ExecIo::resize_fd: 4 bytes, rows then cols, host
// byte order (one write each, so a record never splits in a pipe).
struct TerminalSize {
  uint16_t rows = 0;
  uint16_t cols = 0;
};
static_assert(sizeof(TerminalSize) == 4);

nlohmann::json ExecSpecToJson(const ExecSpec& spec);
absl::StatusOr<ExecSpec> ExecSpecFromJson(const nlohmann::json& json);

}  // namespace mesh::runtime
