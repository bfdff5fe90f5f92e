#pragma once

// The container log: what the container writes to stdout and stderr, one line per record in
// the CRI log format (what kubelet and containerd write, so log tools read it):
//   2026-11-29T10:00:00.123456789Z stdout F hello world
// "F" ends a line; "P" is a part of a line longer than kMaxLine (or one the container left
// unfinished when it exited), continued by the next record of the same stream. The file is
// rotated when it would grow past max_size: container.log -> container.log.1 -> ... up to
// max_files files in all (the live one included); the oldest is dropped.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace mesh::runtime {

enum class LogStream { kStdout, kStderr };

class LogWriter {
 public:
  static constexpr size_t kMaxLine = 16 * 1024;

  // Opens (appends to) `path`, mode 0640.
  static absl::StatusOr<LogWriter> Open(std::string path, uint64_t max_size, int max_files);

  // Takes bytes as they come from a stream; writes every completed line.
  absl::Status Write(LogStream stream, absl::string_view data, absl::Time now);
  // Writes what is buffered of unfinished lines as "P" records (at exit).
  absl::Status Flush(absl::Time now);

 private:
  LogWriter(std::string path, UniqueFd fd, uint64_t size, uint64_t max_size, int max_files)
      : path_(std::move(path)),
        fd_(std::move(fd)),
        size_(size),
        max_size_(max_size),
        max_files_(max_files) {}
  absl::Status Record(LogStream stream, bool partial, absl::string_view line, absl::Time now);
  absl::Status Rotate();

  std::string path_;
  UniqueFd fd_;
  uint64_t size_ = 0;
  uint64_t max_size_ = 0;
  int max_files_ = 1;
  std::string pending_[2];  // unfinished line per stream
};

// One parsed record. InvalidArgument for a line that is not a record.
struct LogRecord {
  absl::Time time;
  LogStream stream = LogStream::kStdout;
  bool partial = false;
  std::string text;
};
absl::StatusOr<LogRecord> ParseLogRecord(absl::string_view line);

}  // namespace mesh::runtime
