#include "base/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/quote.h"

namespace mesh {

absl::StatusOr<UniqueFd> TryLockFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return ErrnoToStatus(errno, absl::StrCat("open lock file ", Quote(path)));
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("lock file ", Quote(path), " is held by another process"));
    }
    return ErrnoToStatus(errno, absl::StrCat("lock ", Quote(path)));
  }
  return fd;
}

}  // namespace mesh
