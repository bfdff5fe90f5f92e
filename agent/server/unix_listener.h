#pragma once

// meshd's unix socket (DESIGN.md: /run/mesh/meshd.sock). gRPC 1.51 cannot check a unix peer's
// credentials itself, so meshd accepts the connections and hands each allowed one to the gRPC
// server (grpc::AddInsecureChannelFromFd, grpcpp/server_posix.h; TESTING.md note).
//
// - The socket is 0660 from the moment it exists (bound under umask 0117), owned by root and,
//   when the group exists, by group `mesh`; never an abstract socket (CVE-2020-15257).
// - A peer is allowed if it is root (uid 0) or a member of that group: its primary or any
//   supplementary group at connect time (SO_PEERCRED, SO_PEERGROUPS; no /proc lookup, so no
//   race with pid reuse). Others are logged and the connection is closed at once.
// - A stale socket file at the path (nobody listening) is replaced; a live one is refused
//   (another meshd runs) with FAILED_PRECONDITION. The listener holds an flock on
//   `<path>.lock` (left in place, never unlinked) while it lives, so two meshd starting at
//   once cannot both take the path; the second is refused the same way.

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace grpc {
class Server;
}

namespace mesh::agent {

// Who connected (SO_PEERCRED, SO_PEERGROUPS).
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary
};

// The rule above, as a pure function: root, or `allowed_gid` among the peer's groups.
bool PeerAllowed(const PeerCredentials& peer, std::optional<gid_t> allowed_gid);

// The id of group `name` (getgrnam_r); nullopt if there is no such group.
std::optional<gid_t> LookUpGroup(const std::string& name);

class UnixListener {
 public:
  struct Options {
    std::string path;            // e.g. /run/mesh/meshd.sock
    std::string group = "mesh";  // allowed besides root, if it exists
  };
  // Creates the socket and its directory (0755) and listens; Serve starts accepting.
  static absl::StatusOr<std::unique_ptr<UnixListener>> Open(const Options& options);
  ~UnixListener();  // stops accepting, removes the socket file
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  // Accepts on a thread of its own; every allowed connection goes to `server` (started, with
  // no listening ports of its own). Once.
  void Serve(grpc::Server* server);

  const std::string& path() const { return options_.path; }
  // Connections refused so far (for tests and Info).
  int refused() const { return refused_.load(); }

 private:
  UnixListener(Options options, UniqueFd lock, UniqueFd socket, std::optional<gid_t> gid,
               UniqueFd stop);
  void Run(grpc::Server* server);

  const Options options_;
  UniqueFd lock_;  // flock on <path>.lock
  UniqueFd socket_;
  const std::optional<gid_t> allowed_gid_;
  UniqueFd stop_;  // eventfd: wakes the accept loop to stop
  std::atomic<int> refused_ = 0;
  std::thread thread_;
};

}  // namespace mesh::agent
