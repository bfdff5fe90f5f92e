#pragma once

// The built-in "busybox" image: one layer made from the host's statically linked busybox
// (Debian's busybox-static), with every applet as a hardlink, the usual directories and a
// minimal /etc/passwd and /etc/group. The layer tar and the config are byte-for-byte the same
// for the same busybox binary, so the image id is stable across runs and hosts.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/image/digest.h"
#include "runtime/image/manifest.h"

namespace mesh::runtime::image {

inline constexpr char kBusyboxImageName[] = "busybox:latest";
inline constexpr char kDefaultBusyboxPath[] = "/bin/busybox";
inline constexpr char kDefaultPathEnv[] =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// FailedPrecondition unless the ELF file behind `fd` has no program interpreter (is statically
// linked): a dynamic busybox could not run in an image that holds no libc. `path` names it.
absl::Status CheckStaticElf(int fd, const std::string& path);

// Parses the output of `busybox --list-full` ("bin/ash\nusr/bin/[\n..."): normalised, sorted,
// without duplicates or "bin/busybox" itself. InvalidArgument for a line that is absolute or
// climbs with "..".
absl::StatusOr<std::vector<std::string>> ParseAppletList(absl::string_view text);

// Runs `<busybox> --list-full` and parses it.
absl::StatusOr<std::vector<std::string>> ListApplets(const std::string& busybox_path);

// Writes the layer as an uncompressed ustar archive to `out_fd`: directories, bin/busybox (the
// content of `busybox_fd`), etc/passwd, etc/group, then one hardlink per applet. Every entry
// is owned by 0:0 with mtime 0.
absl::Status WriteBusyboxLayer(int busybox_fd, const std::vector<std::string>& applets, int out_fd);

// The image config (canonical JSON, keys sorted): Cmd ["sh"], Env [PATH=...], created
// 1970-01-01T00:00:00Z, rootfs.diff_ids [diff_id].
std::string BusyboxConfig(const Digest& diff_id, const Platform& platform);

}  // namespace mesh::runtime::image
