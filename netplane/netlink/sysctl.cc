#include "netplane/netlink/sysctl.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"

namespace mesh::netplane::netlink {

absl::Status WriteSysctl(absl::string_view key, absl::string_view value) {
  const std::string path = absl::StrCat("/proc/sys/", key);
  const std::string what = absl::StrCat("set sysctl ", key, "=", value);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return mesh::ErrnoToStatus(errno, what);
  ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n < 0) return mesh::ErrnoToStatus(errno, what);
  if (static_cast<size_t>(n) != value.size()) return mesh::ErrnoToStatus(EIO, what);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSysctl(absl::string_view key) {
  absl::StatusOr<std::string> text = ReadFile(absl::StrCat("/proc/sys/", key));
  if (!text.ok()) return text.status();
  return std::string(absl::StripAsciiWhitespace(*text));
}

}  // namespace mesh::netplane::netlink
