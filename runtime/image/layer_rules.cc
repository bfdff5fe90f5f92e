#include "runtime/image/layer_rules.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"

namespace mesh::runtime::image {
namespace {

constexpr size_t kMaxComponent = 255;  // NAME_MAX
constexpr size_t kMaxPath = 4095;      // PATH_MAX - 1
constexpr absl::string_view kWhiteoutPrefix = ".wh.";
constexpr absl::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr absl::string_view kOpaqueMarker = ".wh..wh..opq";

// A path quoted for a message: escaped and cut short, so hostile names cannot flood a log.
std::string Quote(absl::string_view path) {
  if (path.size() > 200) return absl::StrCat("\"", absl::CHexEscape(path.substr(0, 200)), "...\"");
  return absl::StrCat("\"", absl::CHexEscape(path), "\"");
}

absl::Status Reject(absl::string_view what, absl::string_view path, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(what, " ", Quote(path), ": ", rule));
}

absl::string_view Parent(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? absl::string_view() : path.substr(0, slash);
}

absl::string_view Base(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

absl::string_view EntryTypeName(EntryType type) {
  switch (type) {
    case EntryType::kDirectory:
      return "directory";
    case EntryType::kRegular:
      return "regular file";
    case EntryType::kSymlink:
      return "symlink";
    case EntryType::kHardlink:
      return "hardlink";
    case EntryType::kFifo:
      return "fifo";
    case EntryType::kCharDevice:
      return "character device";
    case EntryType::kBlockDevice:
      return "block device";
    case EntryType::kSocket:
      return "socket";
    case EntryType::kUnknown:
      break;
  }
  return "unknown entry type";
}

absl::StatusOr<std::string> NormalizeEntryPath(absl::string_view raw, absl::string_view what) {
  if (raw.empty()) return Reject(what, raw, "empty path");
  if (raw.find('\0') != absl::string_view::npos) return Reject(what, raw, "NUL byte in path");
  if (raw.front() == '/') {
    return Reject(what, raw, "absolute path (entries must be relative to the layer root)");
  }
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(raw, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") return Reject(what, raw, "\"..\" component would leave the layer");
    if (part.size() > kMaxComponent) {
      return Reject(what, raw,
                    absl::StrCat("a path component is longer than ", kMaxComponent, " bytes"));
    }
    parts.push_back(part);
  }
  std::string out = absl::StrJoin(parts, "/");
  if (out.size() > kMaxPath) {
    return Reject(what, raw, absl::StrCat("path is longer than ", kMaxPath, " bytes"));
  }
  return out;
}

absl::StatusOr<WhiteoutClass> ClassifyWhiteout(absl::string_view path) {
  WhiteoutClass out;
  if (path.empty()) return out;
  // Components before the last: aufs metadata directories are skipped whole; any other
  // ".wh." name used as a directory is abuse (a whiteout is never a directory with content).
  absl::string_view parent = Parent(path);
  if (!parent.empty()) {
    for (absl::string_view part : absl::StrSplit(parent, '/')) {
      if (absl::StartsWith(part, kWhiteoutMetaPrefix)) {
        out.kind = WhiteoutClass::kAufsMeta;
        return out;
      }
      if (absl::StartsWith(part, kWhiteoutPrefix)) {
        return Reject("entry", path,
                      "whiteout name used as a directory (a \".wh.\" entry must be a leaf)");
      }
    }
  }
  absl::string_view base = Base(path);
  if (!absl::StartsWith(base, kWhiteoutPrefix)) return out;
  if (base == kOpaqueMarker) {
    out.kind = WhiteoutClass::kOpaque;
    out.target = std::string(parent);
    return out;
  }
  if (absl::StartsWith(base, kWhiteoutMetaPrefix)) {
    out.kind = WhiteoutClass::kAufsMeta;
    return out;
  }
  absl::string_view name = base.substr(kWhiteoutPrefix.size());
  if (name.empty() || name == "." || name == "..") {
    return Reject("entry", path, "whiteout names no file (\".wh.\" must be followed by a name)");
  }
  out.kind = WhiteoutClass::kWhiteout;
  out.target = parent.empty() ? std::string(name) : absl::StrCat(parent, "/", name);
  return out;
}

absl::Status CheckSymlinkTarget(absl::string_view link_path, absl::string_view target) {
  if (target.empty()) return Reject("symlink", link_path, "empty target");
  if (target.find('\0') != absl::string_view::npos) {
    return Reject("symlink", link_path, "NUL byte in target");
  }
  if (target.size() > kMaxPath) {
    return Reject("symlink", link_path, absl::StrCat("target longer than ", kMaxPath, " bytes"));
  }
  if (target.front() == '/') return absl::OkStatus();
  // Depth of the directory holding the link; each ".." climbs one level, each name descends.
  int64_t depth = 0;
  for (absl::string_view part : absl::StrSplit(Parent(link_path), '/', absl::SkipEmpty())) {
    if (!part.empty()) ++depth;
  }
  for (absl::string_view part : absl::StrSplit(target, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      if (--depth < 0) {
        return Reject(
            "symlink", link_path,
            absl::StrCat("relative target ", Quote(target), " climbs above the layer root"));
      }
    } else {
      ++depth;
    }
  }
  return absl::OkStatus();
}

XattrVerdict ClassifyXattr(absl::string_view name) {
  if (absl::StartsWith(name, "trusted.overlay.") || absl::StartsWith(name, "user.overlay.")) {
    return XattrVerdict::kReject;
  }
  if (absl::StartsWith(name, "user.") || name == "security.capability") {
    return XattrVerdict::kKeep;
  }
  return XattrVerdict::kDrop;
}

absl::Status LayerPolicy::CheckParents(absl::string_view path, absl::string_view entry_name) {
  size_t pos = 0;
  while ((pos = path.find('/', pos)) != absl::string_view::npos) {
    std::string prefix(path.substr(0, pos));
    auto it = seen_.find(prefix);
    if (it != seen_.end()) {
      switch (it->second) {
        case Kind::kDirectory:
          break;
        case Kind::kSymlink:
          return Reject("entry", entry_name,
                        absl::StrCat("path goes through symlink ", Quote(prefix),
                                     " created earlier in this archive"));
        case Kind::kWhiteout:
          break;  // a directory replaces the whiteout (the writer makes it opaque)
        case Kind::kRegular:
        case Kind::kOther:
          return Reject("entry", entry_name,
                        absl::StrCat("parent ", Quote(prefix), " is not a directory"));
      }
    }
    ++pos;
  }
  // Parents that were missing or whiteouts are now directories.
  pos = 0;
  while ((pos = path.find('/', pos)) != absl::string_view::npos) {
    std::string prefix(path.substr(0, pos));
    auto it = seen_.find(prefix);
    if (it == seen_.end() || it->second == Kind::kWhiteout) seen_[prefix] = Kind::kDirectory;
    ++pos;
  }
  return absl::OkStatus();
}

void LayerPolicy::ForgetBelow(const std::string& path) {
  std::string prefix = path + "/";
  auto it = seen_.lower_bound(prefix);
  while (it != seen_.end() && absl::StartsWith(it->first, prefix)) it = seen_.erase(it);
}

void LayerPolicy::Record(const std::string& path, Kind kind) {
  auto it = seen_.find(path);
  if (it != seen_.end() && it->second == Kind::kDirectory && kind != Kind::kDirectory) {
    ForgetBelow(path);  // the writer replaces the directory and everything in it
  }
  seen_[path] = kind;
}

absl::StatusOr<PlannedEntry> LayerPolicy::Check(const TarEntry& entry) {
  if (++entries_ > limits_.max_entries) {
    return Reject("entry", entry.path,
                  absl::StrCat("archive has more than ", limits_.max_entries,
                               " entries (the limit for one layer)"));
  }
  // Every declared size counts, also of entries that are skipped or become whiteouts: the
  // reader still has to decompress their data.
  if (entry.size < 0) return Reject("entry", entry.path, "negative size");
  bytes_ += static_cast<uint64_t>(entry.size);
  if (bytes_ > limits_.max_bytes) {
    return Reject("entry", entry.path,
                  absl::StrCat("archive holds more than ", limits_.max_bytes,
                               " bytes of file content (the limit for one layer)"));
  }
  MESH_ASSIGN_OR_RETURN(std::string path, NormalizeEntryPath(entry.path));

  PlannedEntry out;
  out.type = entry.type;
  out.path = path;
  out.size = 0;
  out.mode = entry.mode & 07777;
  out.mtime_sec = entry.mtime_sec;
  out.mtime_nsec = entry.mtime_nsec;
  if (entry.uid < 0 || entry.uid >= 0xffffffffLL || entry.gid < 0 || entry.gid >= 0xffffffffLL) {
    return Reject("entry", entry.path,
                  absl::StrCat("owner ", entry.uid, ":", entry.gid, " is not a valid uid:gid"));
  }
  out.uid = static_cast<uint32_t>(entry.uid);
  out.gid = static_cast<uint32_t>(entry.gid);

  if (overlay_whiteouts_) {
    MESH_ASSIGN_OR_RETURN(WhiteoutClass wh, ClassifyWhiteout(path));
    switch (wh.kind) {
      case WhiteoutClass::kNone:
        break;
      case WhiteoutClass::kAufsMeta:
        out.action = EntryAction::kSkip;
        return out;
      case WhiteoutClass::kOpaque: {
        auto it = seen_.find(wh.target);
        if (!wh.target.empty() && it != seen_.end() && it->second != Kind::kDirectory &&
            it->second != Kind::kWhiteout) {
          return Reject("entry", entry.path,
                        "opaque marker inside something this archive made a non-directory");
        }
        MESH_RETURN_IF_ERROR(CheckParents(path, entry.path));
        out.action = EntryAction::kOpaque;
        out.path = wh.target;
        out.type = EntryType::kDirectory;
        return out;
      }
      case WhiteoutClass::kWhiteout: {
        MESH_RETURN_IF_ERROR(CheckParents(path, entry.path));
        out.action = EntryAction::kWhiteout;
        out.path = wh.target;
        out.type = EntryType::kCharDevice;
        out.mode = 0;
        out.uid = 0;
        out.gid = 0;
        // A whiteout only deletes lower layers' files: what this archive put at the same path
        // stays (OCI image spec), and the writer leaves it.
        if (!seen_.contains(wh.target)) Record(wh.target, Kind::kWhiteout);
        return out;
      }
    }
  }

  for (const auto& [name, value] : entry.xattrs) {
    switch (ClassifyXattr(name)) {
      case XattrVerdict::kKeep:
        out.xattrs.emplace_back(name, value);
        break;
      case XattrVerdict::kDrop:
        break;
      case XattrVerdict::kReject:
        return Reject(
            "entry", entry.path,
            absl::StrCat("extended attribute ", Quote(name), " would steer overlayfs (refused)"));
    }
  }

  if (path.empty()) {
    if (entry.type != EntryType::kDirectory) {
      return Reject(
          "entry", entry.path,
          absl::StrCat("the layer root must be a directory, not a ", EntryTypeName(entry.type)));
    }
    return out;
  }
  MESH_RETURN_IF_ERROR(CheckParents(path, entry.path));

  switch (entry.type) {
    case EntryType::kDirectory:
      Record(path, Kind::kDirectory);
      return out;
    case EntryType::kRegular:
      out.size = entry.size;
      Record(path, Kind::kRegular);
      return out;
    case EntryType::kSymlink:
      MESH_RETURN_IF_ERROR(CheckSymlinkTarget(path, entry.link_target));
      out.link_target = entry.link_target;
      out.xattrs.clear();
      Record(path, Kind::kSymlink);
      return out;
    case EntryType::kHardlink: {
      absl::StatusOr<std::string> target = NormalizeEntryPath(entry.link_target, "hardlink target");
      if (!target.ok()) {
        return Reject("hardlink", entry.path, std::string(target.status().message()));
      }
      auto it = seen_.find(*target);
      if (*target == path || it == seen_.end() || it->second != Kind::kRegular) {
        return Reject("hardlink", entry.path,
                      absl::StrCat("target ", Quote(*target),
                                   " is not a regular file extracted earlier from this archive"));
      }
      out.link_target = *target;
      out.xattrs.clear();
      Record(path, Kind::kRegular);
      return out;
    }
    case EntryType::kFifo:
      out.xattrs.clear();
      Record(path, Kind::kOther);
      return out;
    case EntryType::kCharDevice:
    case EntryType::kBlockDevice:
      return Reject("entry", entry.path,
                    absl::StrCat(EntryTypeName(entry.type),
                                 " refused (device nodes in images would give containers "
                                 "access to host devices)"));
    case EntryType::kSocket:
    case EntryType::kUnknown:
      break;
  }
  return Reject("entry", entry.path,
                absl::StrCat(EntryTypeName(entry.type), " is not a supported entry type"));
}

}  // namespace mesh::runtime::image
