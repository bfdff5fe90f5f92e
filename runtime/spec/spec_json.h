#pragma once

// ContainerSpec <-> JSON, in the OCI runtime spec's field names where OCI has the field
// ("process.args", "linux.resources.memory.limit", ...), so the shim's config file reads like
// an OCI config.json. mesh-only fields sit under "mesh".

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/spec/spec.h"

namespace mesh::runtime {

nlohmann::json SpecToJson(const ContainerSpec& spec);
// InvalidArgument naming the field for a wrong type or an unknown enum value.
absl::StatusOr<ContainerSpec> SpecFromJson(const nlohmann::json& json);

}  // namespace mesh::runtime
