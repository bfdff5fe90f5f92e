#include "base/errno_status.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace mesh {

absl::StatusCode ErrnoToCode(int err) {
  switch (err) {
    case 0:
      return absl::StatusCode::kOk;
    case EEXIST:
      return absl::StatusCode::kAlreadyExists;
    case ENOENT:
    case ENODEV:
    case ESRCH:
    case ENXIO:
      return absl::StatusCode::kNotFound;
    case EPERM:
    case EACCES:
      return absl::StatusCode::kPermissionDenied;
    case EINVAL:
    case ERANGE:
    case ENAMETOOLONG:
      return absl::StatusCode::kInvalidArgument;
    case EBUSY:
    case ENOTEMPTY:
      return absl::StatusCode::kFailedPrecondition;
    case ENOSPC:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case EAGAIN:
      return absl::StatusCode::kResourceExhausted;
    case ETIMEDOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case EOPNOTSUPP:
    case ENOSYS:
      return absl::StatusCode::kUnimplemented;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status ErrnoToStatus(int err, absl::string_view what) {
  if (err == 0) return absl::OkStatus();
  const char* name = strerrorname_np(err);
  std::string cause = name != nullptr ? absl::StrCat(strerrordesc_np(err), " (", name, ")")
                                      : absl::StrCat("errno ", err);
  return absl::Status(ErrnoToCode(err), absl::StrCat(what, ": ", cause));
}

absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  absl::Status out(status.code(), absl::StrCat(context, ": ", status.message()));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace mesh
