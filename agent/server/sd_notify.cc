#include "agent/server/sd_notify.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/log.h"

namespace mesh::agent {
namespace {

// The protocol is newline-separated assignments, so a newline inside a status would start a
// new one ("MAINPID=...", "READY=1"): a status is kept to one line.
std::string StatusAssignment(absl::string_view status) {
  std::string line = absl::StrCat("STATUS=", status);
  std::replace(line.begin(), line.end(), '\n', ' ');
  return line;
}

void Notify(const std::string& state) {
  // Returns 0 when $NOTIFY_SOCKET is unset, > 0 when sent, -errno on failure.
  int r = ::sd_notify(/*unset_environment=*/0, state.c_str());
  if (r < 0) {
    MESH_LOG(Warning)
        << ErrnoToStatus(-r, absl::StrCat("notify systemd \"", state, "\"")).message();
  }
}

}  // namespace

void NotifyReady(absl::string_view status) {
  Notify(status.empty() ? std::string("READY=1")
                        : absl::StrCat("READY=1\n", StatusAssignment(status)));
}

void NotifyStopping() { Notify("STOPPING=1"); }

void NotifyStatus(absl::string_view status) { Notify(StatusAssignment(status)); }

}  // namespace mesh::agent
