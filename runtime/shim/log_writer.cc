#include "runtime/shim/log_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace mesh::runtime {
namespace {

const char* StreamName(LogStream s) { return s == LogStream::kStdout ? "stdout" : "stderr"; }

}  // namespace

absl::StatusOr<LogWriter> LogWriter::Open(std::string path, uint64_t max_size, int max_files) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd.valid()) return mesh::ErrnoToStatus(errno, absl::StrCat("open log \"", path, "\""));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return mesh::ErrnoToStatus(errno, path);
  return LogWriter(std::move(path), std::move(fd), static_cast<uint64_t>(st.st_size),
                   max_size == 0 ? 1 : max_size, max_files < 1 ? 1 : max_files);
}

absl::Status LogWriter::Write(LogStream stream, absl::string_view data, absl::Time now) {
  std::string& pending = pending_[static_cast<int>(stream)];
  while (!data.empty()) {
    size_t nl = data.find('\n');
    if (nl == absl::string_view::npos) {
      pending.append(data.data(), data.size());
      data = {};
    } else {
      pending.append(data.data(), nl);
      data.remove_prefix(nl + 1);
      MESH_RETURN_IF_ERROR(Record(stream, false, pending, now));
      pending.clear();
    }
    while (pending.size() >= kMaxLine) {
      MESH_RETURN_IF_ERROR(
          Record(stream, true, absl::string_view(pending).substr(0, kMaxLine), now));
      pending.erase(0, kMaxLine);
    }
  }
  return absl::OkStatus();
}

absl::Status LogWriter::Flush(absl::Time now) {
  for (LogStream s : {LogStream::kStdout, LogStream::kStderr}) {
    std::string& pending = pending_[static_cast<int>(s)];
    if (pending.empty()) continue;
    MESH_RETURN_IF_ERROR(Record(s, true, pending, now));
    pending.clear();
  }
  return absl::OkStatus();
}

absl::Status LogWriter::Record(LogStream stream, bool partial, absl::string_view line,
                               absl::Time now) {
  std::string record =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", now, absl::UTCTimeZone()), " ",
                   StreamName(stream), partial ? " P " : " F ", line, "\n");
  if (size_ > 0 && size_ + record.size() > max_size_) MESH_RETURN_IF_ERROR(Rotate());
  MESH_RETURN_IF_ERROR(WriteAll(fd_.get(), record, "write the container log"));
  size_ += record.size();
  return absl::OkStatus();
}

absl::Status LogWriter::Rotate() {
  // container.log.(k-1) -> .k, ..., container.log -> .1; the oldest falls off.
  if (max_files_ <= 1) {
    if (ftruncate(fd_.get(), 0) != 0) return mesh::ErrnoToStatus(errno, "truncate the log");
    size_ = 0;
    return absl::OkStatus();
  }
  for (int k = max_files_ - 1; k >= 1; --k) {
    std::string from = k == 1 ? path_ : absl::StrCat(path_, ".", k - 1);
    std::string to = absl::StrCat(path_, ".", k);
    if (rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
      return mesh::ErrnoToStatus(errno, absl::StrCat("rotate \"", from, "\""));
    }
  }
  UniqueFd fd(open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd.valid()) return mesh::ErrnoToStatus(errno, absl::StrCat("open log \"", path_, "\""));
  fd_ = std::move(fd);
  size_ = 0;
  return absl::OkStatus();
}

absl::StatusOr<LogRecord> ParseLogRecord(absl::string_view line) {
  auto bad = [&] { return absl::InvalidArgumentError(absl::StrCat("not a log record: ", line)); };
  size_t s1 = line.find(' ');
  if (s1 == absl::string_view::npos) return bad();
  size_t s2 = line.find(' ', s1 + 1);
  if (s2 == absl::string_view::npos || s2 + 2 > line.size()) return bad();
  LogRecord r;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, std::string(line.substr(0, s1)), &r.time, &err)) {
    return bad();
  }
  absl::string_view stream = line.substr(s1 + 1, s2 - s1 - 1);
  if (stream == "stdout") {
    r.stream = LogStream::kStdout;
  } else if (stream == "stderr") {
    r.stream = LogStream::kStderr;
  } else {
    return bad();
  }
  char tag = line[s2 + 1];
  if (tag != 'P' && tag != 'F') return bad();
  r.partial = tag == 'P';
  r.text = std::string(line.size() > s2 + 3 ? line.substr(s2 + 3) : absl::string_view());
  return r;
}

}  // namespace mesh::runtime
