#include "runtime/image/archive_reader.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace mesh::runtime::image {
namespace {

constexpr size_t kBufferSize = 128 * 1024;
constexpr uint64_t kMaxTrailingBytes = 16 << 20;

struct ArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;

// Stage 1 input: the fd, hashed as read (the stored digest).
struct FdSource {
  int fd = -1;
  Sha256 hash;
  uint64_t bytes = 0;
  std::vector<char> buffer = std::vector<char>(kBufferSize);
};

la_ssize_t FdRead(archive* a, void* client, const void** out) {
  auto* src = static_cast<FdSource*>(client);
  for (;;) {
    ssize_t n = ::read(src->fd, src->buffer.data(), src->buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      archive_set_error(a, errno, "read failed");
      return -1;
    }
    src->hash.Update(src->buffer.data(), static_cast<size_t>(n));
    src->bytes += static_cast<uint64_t>(n);
    *out = src->buffer.data();
    return n;
  }
}

// Stage 2 input: the decompressed stream from stage 1, hashed as read (the diff_id).
struct RawSource {
  archive* outer = nullptr;
  Sha256 hash;
  std::vector<char> buffer = std::vector<char>(kBufferSize);
};

la_ssize_t RawRead(archive* a, void* client, const void** out) {
  auto* src = static_cast<RawSource*>(client);
  la_ssize_t n = archive_read_data(src->outer, src->buffer.data(), src->buffer.size());
  if (n < 0) {
    const char* why = archive_error_string(src->outer);
    archive_set_error(a, EIO, "decompress: %s", why ? why : "unknown error");
    return -1;
  }
  src->hash.Update(src->buffer.data(), static_cast<size_t>(n));
  *out = src->buffer.data();
  return n;
}

absl::Status ArchiveError(archive* a, absl::string_view what, absl::string_view doing) {
  const char* why = archive_error_string(a);
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", doing, ": ",
                                                 why ? why : "unknown libarchive error",
                                                 " (is it a tar archive, plain, gzip or zstd?)"));
}

EntryType TypeOf(archive_entry* e) {
  if (archive_entry_hardlink(e) != nullptr) return EntryType::kHardlink;
  switch (archive_entry_filetype(e)) {
    case AE_IFREG:
      return EntryType::kRegular;
    case AE_IFDIR:
      return EntryType::kDirectory;
    case AE_IFLNK:
      return EntryType::kSymlink;
    case AE_IFIFO:
      return EntryType::kFifo;
    case AE_IFCHR:
      return EntryType::kCharDevice;
    case AE_IFBLK:
      return EntryType::kBlockDevice;
    case AE_IFSOCK:
      return EntryType::kSocket;
    default:
      return EntryType::kUnknown;
  }
}

// Path strings as raw bytes: the locale form first, the UTF-8 form when the archive's UTF-8
// names cannot be converted to the (usually "C") locale.
const char* PathOf(archive_entry* e) {
  const char* p = archive_entry_pathname(e);
  return p != nullptr ? p : archive_entry_pathname_utf8(e);
}
const char* HardlinkOf(archive_entry* e) {
  const char* p = archive_entry_hardlink(e);
  return p != nullptr ? p : archive_entry_hardlink_utf8(e);
}
const char* SymlinkOf(archive_entry* e) {
  const char* p = archive_entry_symlink(e);
  return p != nullptr ? p : archive_entry_symlink_utf8(e);
}

class ArchiveEntryData : public EntryData {
 public:
  ArchiveEntryData(archive* a, const std::string& what, int64_t declared)
      : a_(a), what_(what), declared_(declared) {}

  absl::StatusOr<bool> Next(Block* block) override {
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(a_, &buf, &size, &offset);
    if (r == ARCHIVE_EOF) return false;
    if (r < ARCHIVE_WARN) return ArchiveError(a_, what_, "read entry data");
    if (offset < 0 || static_cast<uint64_t>(offset) + size > static_cast<uint64_t>(declared_)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what_, ": entry data runs past its declared size of ", declared_));
    }
    block->data = buf;
    block->size = size;
    block->offset = offset;
    return true;
  }

 private:
  archive* a_;
  const std::string& what_;
  int64_t declared_;
};

class NoData : public EntryData {
 public:
  absl::StatusOr<bool> Next(Block*) override { return false; }
};

}  // namespace

absl::StatusOr<ArchiveDigests> ReadArchive(int fd, const ArchiveReadOptions& options,
                                           LayerSink& sink) {
  const std::string& what = options.what;
  // Stage 1: decompression only (gzip, zstd, or none), as one raw stream. Filters are enabled
  // one by one: archive_read_support_filter_all() would also enable filters that run external
  // programs.
  ArchivePtr outer(archive_read_new());
  ArchivePtr inner(archive_read_new());
  if (outer == nullptr || inner == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": cannot allocate a reader"));
  }
  if (archive_read_support_filter_gzip(outer.get()) != ARCHIVE_OK ||
      archive_read_support_filter_zstd(outer.get()) != ARCHIVE_OK ||
      archive_read_support_format_raw(outer.get()) != ARCHIVE_OK ||
      archive_read_support_format_tar(inner.get()) != ARCHIVE_OK) {
    return absl::InternalError(absl::StrCat(
        what, ": libarchive lacks built-in gzip, zstd or tar support: ",
        archive_error_string(outer.get()) ? archive_error_string(outer.get()) : "unknown"));
  }
  FdSource fd_source;
  fd_source.fd = fd;
  if (archive_read_open(outer.get(), &fd_source, nullptr, FdRead, nullptr) != ARCHIVE_OK) {
    return ArchiveError(outer.get(), what, "open");
  }
  archive_entry* raw_entry = nullptr;
  if (archive_read_next_header(outer.get(), &raw_entry) != ARCHIVE_OK) {
    return ArchiveError(outer.get(), what, "open");
  }
  // Stage 2: the tar reader, fed from stage 1.
  RawSource raw_source;
  raw_source.outer = outer.get();
  if (archive_read_open(inner.get(), &raw_source, nullptr, RawRead, nullptr) != ARCHIVE_OK) {
    return ArchiveError(inner.get(), what, "open tar stream");
  }

  LayerPolicy policy(options.limits, options.overlay_whiteouts);
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(inner.get(), &e);
    if (r == ARCHIVE_EOF) break;
    // ARCHIVE_WARN (e.g. a name not convertible to the locale) still gives a usable entry.
    if (r < ARCHIVE_WARN) return ArchiveError(inner.get(), what, "read next entry");

    TarEntry entry;
    const char* path = PathOf(e);
    if (path == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": entry ", policy.entries() + 1, " has no usable path"));
    }
    entry.path = path;
    entry.type = TypeOf(e);
    if (entry.type == EntryType::kHardlink) {
      const char* target = HardlinkOf(e);
      entry.link_target = target ? target : "";
    } else if (entry.type == EntryType::kSymlink) {
      const char* target = SymlinkOf(e);
      entry.link_target = target ? target : "";
    }
    entry.size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
    entry.mode = static_cast<uint32_t>(archive_entry_perm(e)) & 07777;
    entry.uid = archive_entry_uid(e);
    entry.gid = archive_entry_gid(e);
    if (archive_entry_mtime_is_set(e)) {
      entry.mtime_sec = archive_entry_mtime(e);
      entry.mtime_nsec = archive_entry_mtime_nsec(e);
    }
    archive_entry_xattr_reset(e);
    const char* xname = nullptr;
    const void* xvalue = nullptr;
    size_t xsize = 0;
    while (archive_entry_xattr_next(e, &xname, &xvalue, &xsize) == ARCHIVE_OK) {
      if (xname == nullptr) continue;
      std::string value(static_cast<const char*>(xvalue), xvalue ? xsize : 0);
      // pax archives may carry an attribute twice (LIBARCHIVE.xattr.* and SCHILY.xattr.*).
      auto same = std::find_if(entry.xattrs.begin(), entry.xattrs.end(),
                               [&](const auto& x) { return x.first == xname; });
      if (same != entry.xattrs.end()) {
        same->second = std::move(value);
      } else {
        entry.xattrs.emplace_back(xname, std::move(value));
      }
    }

    absl::StatusOr<PlannedEntry> planned = policy.Check(entry);
    if (!planned.ok()) return mesh::Annotate(planned.status(), what);
    if (planned->action == EntryAction::kSkip) continue;
    absl::Status applied;
    if (planned->action == EntryAction::kCreate && planned->type == EntryType::kRegular) {
      ArchiveEntryData data(inner.get(), what, planned->size);
      applied = sink.Apply(*planned, data);
    } else {
      NoData none;
      applied = sink.Apply(*planned, none);
    }
    if (!applied.ok()) {
      std::string quoted = entry.path.size() > 200 ? entry.path.substr(0, 200) + "..." : entry.path;
      return mesh::Annotate(applied,
                            absl::StrCat(what, ": entry \"", absl::CHexEscape(quoted), "\""));
    }
  }
  MESH_RETURN_IF_ERROR(mesh::Annotate(sink.Finish(), what));

  // The tar reader stops at the end-of-archive blocks; the diff_id covers the whole stream.
  // What follows is normally block padding; more than kMaxTrailingBytes is refused so that a
  // compressed bomb after the end cannot keep the import busy.
  uint64_t trailing = 0;
  for (;;) {
    const void* out = nullptr;
    la_ssize_t n = RawRead(inner.get(), &raw_source, &out);
    if (n < 0) return ArchiveError(inner.get(), what, "read to the end");
    if (n == 0) break;
    trailing += static_cast<uint64_t>(n);
    if (trailing > kMaxTrailingBytes) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": more than ", kMaxTrailingBytes,
                                                     " bytes follow the end of the tar archive"));
    }
  }
  // And the stored digest covers the whole file, trailing bytes included.
  for (;;) {
    ssize_t n = ::read(fd, fd_source.buffer.data(), fd_source.buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return mesh::ErrnoToStatus(errno, absl::StrCat(what, ": read"));
    if (n == 0) break;
    fd_source.hash.Update(fd_source.buffer.data(), static_cast<size_t>(n));
    fd_source.bytes += static_cast<uint64_t>(n);
  }

  ArchiveDigests out;
  out.stored = fd_source.hash.Finish();
  out.diff_id = raw_source.hash.Finish();
  out.stored_size = fd_source.bytes;
  out.entries = policy.entries();
  out.content_bytes = policy.bytes();
  return out;
}

}  // namespace mesh::runtime::image
