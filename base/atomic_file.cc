#include "base/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"

namespace mesh {
namespace {

std::pair<std::string, std::string> SplitDirBase(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  if (slash == 0) return {"/", path.substr(1)};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace

absl::Status WriteAll(int fd, absl::string_view data, absl::string_view what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return mesh::ErrnoToStatus(errno, what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents, mode_t mode) {
  auto [dir, base] = SplitDirBase(path);
  if (base.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("write \"", path, "\": path names a directory"));
  }
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) return ErrnoToStatus(errno, absl::StrCat("write \"", path, "\": open directory"));

  std::string tmp = absl::StrCat(dir, "/.", base, ".tmp.XXXXXX");
  UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd) return ErrnoToStatus(errno, absl::StrCat("write \"", path, "\": create temp file"));

  absl::Status status = WriteAll(fd.get(), contents, absl::StrCat("write \"", tmp, "\""));
  if (status.ok() && ::fchmod(fd.get(), mode) != 0) {
    status = ErrnoToStatus(errno, absl::StrCat("chmod \"", tmp, "\""));
  }
  if (status.ok() && ::fsync(fd.get()) != 0) {
    status = ErrnoToStatus(errno, absl::StrCat("fsync \"", tmp, "\""));
  }
  fd.Reset();
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = ErrnoToStatus(errno, absl::StrCat("rename \"", tmp, "\" to \"", path, "\""));
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());  // Best effort: the error being returned is the one that matters.
    return status;
  }
  if (::fsync(dir_fd.get()) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("fsync directory \"", dir, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoToStatus(errno, absl::StrCat("read \"", path, "\""));
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, absl::StrCat("read \"", path, "\""));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace mesh
