#pragma once

// Streams a tar archive (plain, gzip or zstd) through libarchive's reader, applying
// LayerPolicy to every entry and handing the survivors to a LayerSink. Computes, in the same
// pass, the digest of the bytes as stored (the OCI blob digest) and of the uncompressed tar
// stream (the layer's diff_id).

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/image/digest.h"
#include "runtime/image/layer_rules.h"

namespace mesh::runtime::image {

// The content of one regular-file entry, in blocks. Sparse files come as blocks whose offsets
// skip the holes.
class EntryData {
 public:
  struct Block {
    const void* data = nullptr;
    size_t size = 0;
    int64_t offset = 0;
  };
  virtual ~EntryData() = default;
  // Fills `block` and returns true, or returns false at the end of the entry.
  virtual absl::StatusOr<bool> Next(Block* block) = 0;
};

// Receives the entries that passed the rules, in archive order.
class LayerSink {
 public:
  virtual ~LayerSink() = default;
  // `data` yields the content of a kCreate regular file (not of a hardlink); it need not be
  // read to the end.
  virtual absl::Status Apply(const PlannedEntry& entry, EntryData& data) = 0;
  // Called once after the last entry.
  virtual absl::Status Finish() = 0;
};

struct ArchiveReadOptions {
  LayerLimits limits;
  // Interpret ".wh." whiteouts (image layers); false for plain archives.
  bool overlay_whiteouts = true;
  // Names the archive in error messages, e.g. `layer "blobs/sha256/ab12..."`.
  std::string what = "archive";
};

struct ArchiveDigests {
  Digest stored;             // sha256 of the bytes read from the fd (compressed or not)
  Digest diff_id;            // sha256 of the uncompressed tar stream
  uint64_t stored_size = 0;  // bytes read from the fd
  uint64_t entries = 0;
  uint64_t content_bytes = 0;  // declared sizes of regular files
};

// Reads the archive from `fd` (its current offset, to the end of the file). Errors:
// InvalidArgument for a broken or hostile archive (naming options.what, the entry and the
// rule), the sink's errors annotated with the entry. Nothing is cleaned up here: the caller
// owns whatever the sink wrote.
absl::StatusOr<ArchiveDigests> ReadArchive(int fd, const ArchiveReadOptions& options,
                                           LayerSink& sink);

}  // namespace mesh::runtime::image
