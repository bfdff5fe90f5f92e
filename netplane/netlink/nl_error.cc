#include "netplane/netlink/nl_error.h"

#include <netlink/errno.h>

#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace mesh::netplane::netlink {

int NlErrorToErrno(int nl_error) {
  switch (std::abs(nl_error)) {
    case NLE_SUCCESS:
      return 0;
    case NLE_INTR:
      return EINTR;
    case NLE_BAD_SOCK:
      return EBADF;
    case NLE_AGAIN:
      return EAGAIN;
    case NLE_NOMEM:
      return ENOMEM;
    case NLE_EXIST:
      return EEXIST;
    case NLE_INVAL:
      return EINVAL;
    case NLE_RANGE:
      return ERANGE;
    case NLE_MSGSIZE:
      return EMSGSIZE;
    case NLE_OPNOTSUPP:
      return EOPNOTSUPP;
    case NLE_AF_NOSUPPORT:
      return EAFNOSUPPORT;
    case NLE_OBJ_NOTFOUND:
      return ENOENT;
    case NLE_NOATTR:
      return ENOENT;
    case NLE_AF_MISMATCH:
      return EINVAL;
    case NLE_BUSY:
      return EBUSY;
    case NLE_PROTO_MISMATCH:
      return EPROTONOSUPPORT;
    case NLE_NOACCESS:
      return EACCES;
    case NLE_PERM:
      return EPERM;
    case NLE_NODEV:
      return ENODEV;
    case NLE_NOADDR:
      return EADDRNOTAVAIL;
    case NLE_MSG_TOOSHORT:
    case NLE_MSG_TRUNC:
    case NLE_MSGTYPE_NOSUPPORT:
    case NLE_SEQ_MISMATCH:
    case NLE_DUMP_INTR:
      return EPROTO;
    default:
      return EIO;
  }
}

absl::Status NlErrorToStatus(int nl_error, absl::string_view what) {
  if (nl_error == 0) return absl::OkStatus();
  int err = NlErrorToErrno(nl_error);
  if (err == EIO || err == EPROTO) {
    return absl::InternalError(
        absl::StrCat(what, ": netlink error: ", nl_geterror(std::abs(nl_error))));
  }
  return mesh::ErrnoToStatus(err, what);
}

}  // namespace mesh::netplane::netlink
