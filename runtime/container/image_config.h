#pragma once

// What an image's config contributes to a container, as Docker applies it: the command
// (Entrypoint + Cmd) when the spec has none, the image's environment under the spec's, the
// working directory, and the user ("uid[:gid]" or names looked up in the image's own
// /etc/passwd and /etc/group, never the host's).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/image/manifest.h"
#include "runtime/spec/spec.h"

namespace mesh::runtime {

// `user`: the spec's user string (ContainerSpec::user), or the image's when that is unset.
// `layer_dirs`: the image's layers, top first (where /etc/passwd is looked up).
absl::Status ApplyImageConfig(const image::ImageConfig& config,
                              const std::vector<std::string>& layer_dirs, ContainerSpec& spec);

// Resolves "uid[:gid]", "name[:group]" (or mixes) against passwd/group text. A numeric uid
// with no passwd entry keeps gid 0 unless given. Supplementary groups: every group of `group`
// text listing the user by name. NotFound naming the user or group that is missing.
absl::StatusOr<User> ResolveUser(const std::string& user, const std::string& passwd,
                                 const std::string& group);

}  // namespace mesh::runtime
