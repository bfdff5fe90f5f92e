#pragma once

// meshd's side of systemd's readiness protocol (sd_notify(3); the unit is Type=notify).
// Every call is a no-op when $NOTIFY_SOCKET is unset (not started by systemd). A failure to
// reach systemd is logged as a warning and otherwise ignored: meshd serves either way, and
// systemd enforces its own start timeout. Safe from any thread.

#include "absl/strings/string_view.h"

namespace mesh::agent {

// "READY=1" plus "STATUS=<status>" when `status` is not empty: start-up is done (after the
// reconcile, when health turns SERVING).
void NotifyReady(absl::string_view status);

// "STOPPING=1": shutdown has begun.
void NotifyStopping();

// "STATUS=<status>": one line shown by `systemctl status`.
void NotifyStatus(absl::string_view status);

}  // namespace mesh::agent
