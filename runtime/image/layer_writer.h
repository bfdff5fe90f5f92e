#pragma once

// Writes the entries of an archive into a directory with fd-relative calls only: every parent
// is opened with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
// RESOLVE_NO_XDEV) and every entry is created by a single-component *at() call on that fd, so
// no symlink in the tree (even one planted by the archive itself) is ever followed.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "runtime/image/archive_reader.h"

namespace mesh::runtime::image {

struct DiskSinkOptions {
  // Whiteouts and opaque directories as overlayfs wants them: a character device 0/0 and the
  // xattr trusted.overlay.opaque=y (both need root: CAP_MKNOD before Linux 5.8,
  // CAP_SYS_ADMIN for trusted.*). False for plain archives (no whiteouts are planned then).
  bool overlay_whiteouts = true;
  // chown entries to the archive's uid/gid (needs CAP_CHOWN); false leaves them to the caller.
  bool preserve_owner = true;
  // Set the xattrs LayerPolicy kept.
  bool preserve_xattrs = true;
};

// A LayerSink that writes into an existing, empty directory. Not thread-safe.
class DiskLayerSink : public LayerSink {
 public:
  static absl::StatusOr<std::unique_ptr<DiskLayerSink>> Create(const std::string& root,
                                                               DiskSinkOptions options);

  absl::Status Apply(const PlannedEntry& entry, EntryData& data) override;
  // Sets the directories' modification times, which creating their children changed.
  absl::Status Finish() override;

 private:
  DiskLayerSink(UniqueFd root, DiskSinkOptions options)
      : root_(std::move(root)), options_(options) {}

  // Opens directory `path` ("" = root), creating missing components (0755) and turning a
  // whiteout in the way into an opaque directory.
  absl::StatusOr<UniqueFd> OpenDir(const std::string& path);
  absl::Status ApplyMetadata(int fd, const PlannedEntry& entry);
  absl::Status SetOpaque(int dir_fd);
  absl::Status WriteRegular(int parent, const std::string& name, const PlannedEntry& entry,
                            EntryData& data);

  UniqueFd root_;
  DiskSinkOptions options_;
  // Directories and their archive mtimes, applied in Finish.
  std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> dir_times_;
};

}  // namespace mesh::runtime::image
