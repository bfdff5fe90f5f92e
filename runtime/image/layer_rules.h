#pragma once

// The rules every entry of an archive must pass before anything is written: path
// normalisation, whiteout classification, symlink and hardlink confinement, type and size
// limits. Pure logic with no file-system access, so it is unit-tested without root; the disk
// writer (layer_writer.h) enforces the same confinement again with openat2.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mesh::runtime::image {

// Caps on what one archive (one layer, or an outer image archive) may hold.
struct LayerLimits {
  // Entries of any kind, including skipped ones.
  uint64_t max_entries = 1'000'000;
  // Sum of the declared data sizes of all entries (sparse files count at their full size).
  uint64_t max_bytes = uint64_t{64} << 30;
};

// What a tar entry says it is.
enum class EntryType {
  kDirectory,
  kRegular,
  kSymlink,
  kHardlink,
  kFifo,
  kCharDevice,
  kBlockDevice,
  kSocket,
  kUnknown,
};
absl::string_view EntryTypeName(EntryType type);

// One archive entry as read, before any rule is applied.
struct TarEntry {
  std::string path;  // as stored in the archive
  EntryType type = EntryType::kRegular;
  std::string link_target;  // symlink target, or hardlink target path; empty otherwise
  int64_t size = 0;         // regular files: declared content size
  uint32_t mode = 0644;     // permission bits, setuid/setgid/sticky included (07777)
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t mtime_sec = 0;
  int64_t mtime_nsec = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;  // name -> value
};

// What the writer must do for an entry that passed the rules.
enum class EntryAction {
  kCreate,    // create `path` as `type` (replacing what this layer had there, except that a
              // directory over a directory only updates its metadata)
  kWhiteout,  // `path` is deleted by this layer: an overlayfs whiteout (char device 0/0)
  kOpaque,    // directory `path` hides everything lower layers have in it
              // (xattr trusted.overlay.opaque=y)
  kSkip,      // nothing to write (aufs metadata such as ".wh..wh.plnk")
};

struct PlannedEntry {
  EntryAction action = EntryAction::kCreate;
  EntryType type = EntryType::kRegular;
  std::string path;         // normalised: "a/b/c"; "" is the layer root
  std::string link_target;  // symlink: target as given; hardlink: normalised target path
  int64_t size = 0;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_sec = 0;
  int64_t mtime_nsec = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;  // only the kept ones
};

// Normalises an archive path: strips "./" and leading "./", collapses "//", drops a trailing
// "/". Returns "" for the root ("." or "./"). InvalidArgument for an absolute path, a ".."
// component, an empty path, a component longer than 255 bytes or a path longer than 4095.
// `what` names the path in messages (e.g. `entry`, `hardlink target`).
absl::StatusOr<std::string> NormalizeEntryPath(absl::string_view raw,
                                               absl::string_view what = "entry");

// The whiteout reading of a normalised path (OCI image spec, "Whiteouts").
struct WhiteoutClass {
  enum Kind {
    kNone,      // an ordinary entry
    kWhiteout,  // "dir/.wh.name": deletes "dir/name" from lower layers
    kOpaque,    // "dir/.wh..wh..opq": hides all of "dir" in lower layers
    kAufsMeta,  // "dir/.wh..wh.<other>" (aufs bookkeeping): ignored, as Docker does
  };
  Kind kind = kNone;
  std::string target;  // kWhiteout: the path deleted; kOpaque: the directory ("" = root)
};
// InvalidArgument for whiteout abuse: ".wh." naming nothing, ".", "..", or used as a
// directory on the way to another entry.
absl::StatusOr<WhiteoutClass> ClassifyWhiteout(absl::string_view normalized_path);

// A relative symlink target must not climb above the layer root, judged lexically from the
// link's directory (e.g. "a/link" -> "../../etc" escapes). Absolute targets are allowed: they
// resolve inside the container's root at run time. InvalidArgument when it escapes or is empty.
absl::Status CheckSymlinkTarget(absl::string_view normalized_link_path, absl::string_view target);

// Applies every rule to the entries of one archive, in archive order, remembering what the
// archive created so far (for hardlink targets and for entries below a symlink). Not
// thread-safe; one per archive.
class LayerPolicy {
 public:
  // `overlay_whiteouts`: interpret ".wh." names (image layers); false for plain archives such
  // as an OCI layout tar, where such names are ordinary files.
  LayerPolicy(LayerLimits limits, bool overlay_whiteouts)
      : limits_(limits), overlay_whiteouts_(overlay_whiteouts) {}

  // Checks `entry` and says what to write. InvalidArgument naming the entry and the rule.
  absl::StatusOr<PlannedEntry> Check(const TarEntry& entry);

  uint64_t entries() const { return entries_; }
  uint64_t bytes() const { return bytes_; }

 private:
  enum class Kind { kDirectory, kRegular, kSymlink, kOther, kWhiteout };

  absl::Status CheckParents(absl::string_view path, absl::string_view entry_name);
  void Record(const std::string& path, Kind kind);
  void ForgetBelow(const std::string& path);

  LayerLimits limits_;
  bool overlay_whiteouts_;
  uint64_t entries_ = 0;
  uint64_t bytes_ = 0;
  // What this archive has put at each path so far (parents created implicitly included).
  std::map<std::string, Kind> seen_;
};

// The extended attributes a layer may carry: "user.*" and "security.capability" (file
// capabilities). Attributes that would steer overlayfs ("trusted.overlay.*",
// "user.overlay.*") are an error; anything else ("security.selinux", ACLs, other
// "trusted.*") is dropped.
enum class XattrVerdict { kKeep, kDrop, kReject };
XattrVerdict ClassifyXattr(absl::string_view name);

}  // namespace mesh::runtime::image
