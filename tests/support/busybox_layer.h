#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mesh::testing {

// A root filesystem layer made by hand in `dir` (replaced if it exists): the host's
// busybox-static as /bin/busybox with every applet as a symlink to it, and the usual empty
// directories. For runtime tests and benchmarks that need a rootfs the image store would
// never produce (hostile symlinks) or without an image store at all.
absl::Status MakeBusyboxLayer(const std::string& dir);

// A `docker save` archive made by hand, <dir>/image.tar (dir made if missing): one layer from
// MakeBusyboxLayer, tagged `tag`, whose command is `sh -c "echo <greeting>"`. Its path.
absl::StatusOr<std::string> MakeBusyboxArchive(const std::string& dir, const std::string& tag,
                                               const std::string& greeting);

}  // namespace mesh::testing
