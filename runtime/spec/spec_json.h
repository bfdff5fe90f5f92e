#pragma once

// ContainerSpec <-> JSON, in the OCI runtime spec's field names where OCI has the field
// ("process.args", "linux.resources.memory.limit", ...), so the shim's config file reads like
// an OCI config.json. mesh-only fields sit under "mesh".

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/spec/spec.h"

namespace mesh::runtime {

// "process.capabilities" is written only when the spec sets it, so unset (defaults) and set
// with all five lists empty (no capability) come back as they were.
nlohmann::json SpecToJson(const ContainerSpec& spec);
// InvalidArgument naming the field for a wrong type or an unknown enum value.
// "process.capabilities": absent or null is unset; present is taken literally (five empty
// lists: no capability), a missing list being empty (OCI makes each optional). The runtime
// writes a config only after WithDefaults, so each holds the key with the sets its container
// was created with; configs of older mesh versions, which always had the key, read back the
// same way.
absl::StatusOr<ContainerSpec> SpecFromJson(const nlohmann::json& json);

}  // namespace mesh::runtime
