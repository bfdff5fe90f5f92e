#include "agent/server/unix_listener.h"

#include <fcntl.h>
#include <grp.h>
#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/file_lock.h"
#include "base/log.h"

namespace mesh::agent {
namespace {

absl::StatusOr<sockaddr_un> AddressOf(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path[0] != '/' || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path \"", path,
                                                   "\": must be absolute and shorter than ",
                                                   sizeof(addr.sun_path), " bytes"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// Whether something accepts connections on `path` now.
bool SomeoneListens(const sockaddr_un& addr) {
  UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return probe.valid() &&
         connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
}

std::optional<PeerCredentials> CredentialsOf(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return std::nullopt;
  PeerCredentials peer{cred.pid, cred.uid, cred.gid, {}};
  std::vector<gid_t> groups(64);
  for (;;) {
    socklen_t bytes = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &bytes) == 0) {
      groups.resize(bytes / sizeof(gid_t));
      break;
    }
    if (errno != ERANGE) return std::nullopt;
    groups.resize(bytes / sizeof(gid_t) + 1);
  }
  peer.groups = std::move(groups);
  return peer;
}

}  // namespace

bool PeerAllowed(const PeerCredentials& peer, std::optional<gid_t> allowed_gid) {
  if (peer.uid == 0) return true;
  if (!allowed_gid) return false;
  return peer.gid == *allowed_gid ||
         std::find(peer.groups.begin(), peer.groups.end(), *allowed_gid) != peer.groups.end();
}

std::optional<gid_t> LookUpGroup(const std::string& name) {
  group entry{};
  group* found = nullptr;
  std::vector<char> buf(16384);
  if (getgrnam_r(name.c_str(), &entry, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return std::nullopt;
  }
  return found->gr_gid;
}

absl::StatusOr<std::unique_ptr<UnixListener>> UnixListener::Open(const Options& options) {
  const std::string what = absl::StrCat("listen on ", options.path);
  absl::StatusOr<sockaddr_un> addr = AddressOf(options.path);
  if (!addr.ok()) return addr.status();
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(options.path).parent_path(), ec);
  if (ec) return absl::InternalError(absl::StrCat(what, ": create its directory: ", ec.message()));
  // The lock closes the race of two meshd starting at once, which could both find the socket
  // stale, and each unlink the other's (both would then serve, and run recovery side by side).
  absl::StatusOr<UniqueFd> lock = TryLockFile(options.path + ".lock");
  if (absl::IsFailedPrecondition(lock.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": another meshd is serving there or starting (",
                     lock.status().message(), "); stop it first"));
  }
  if (!lock.ok()) return mesh::Annotate(lock.status(), what);
  struct stat st;
  if (lstat(options.path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": the path exists and is not a socket; move it away"));
    }
    if (SomeoneListens(*addr)) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": another meshd is serving there; stop it first"));
    }
    unlink(options.path.c_str());  // a stale socket of an earlier meshd
  }
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!sock.valid()) return mesh::ErrnoToStatus(errno, what);
  // 0660 from the moment the file exists: bind creates it with 0777 & ~umask.
  const mode_t old_umask = umask(0117);
  const int bound = bind(sock.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr));
  const int bind_errno = errno;
  umask(old_umask);
  if (bound != 0) return mesh::ErrnoToStatus(bind_errno, what);
  const std::optional<gid_t> gid = LookUpGroup(options.group);
  if (gid && chown(options.path.c_str(), 0, *gid) != 0) {
    absl::Status s =
        mesh::ErrnoToStatus(errno, absl::StrCat(what, ": give it to group ", options.group));
    unlink(options.path.c_str());
    return s;
  }
  if (listen(sock.get(), 128) != 0) {
    absl::Status s = mesh::ErrnoToStatus(errno, what);
    unlink(options.path.c_str());
    return s;
  }
  UniqueFd stop(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop.valid()) {
    absl::Status s = mesh::ErrnoToStatus(errno, what);
    unlink(options.path.c_str());
    return s;
  }
  return std::unique_ptr<UnixListener>(
      new UnixListener(options, *std::move(lock), std::move(sock), gid, std::move(stop)));
}

UnixListener::UnixListener(Options options, UniqueFd lock, UniqueFd socket,
                           std::optional<gid_t> gid, UniqueFd stop)
    : options_(std::move(options)),
      lock_(std::move(lock)),
      socket_(std::move(socket)),
      allowed_gid_(gid),
      stop_(std::move(stop)) {}

UnixListener::~UnixListener() {
  uint64_t one = 1;
  (void)!write(stop_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  unlink(options_.path.c_str());  // before lock_ closes: the next meshd finds no stale file
}

void UnixListener::Serve(grpc::Server* server) {
  thread_ = std::thread([this, server] { Run(server); });
}

void UnixListener::Run(grpc::Server* server) {
  for (;;) {
    pollfd fds[2] = {{socket_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      MESH_LOG(Error) << "unix socket " << options_.path << ": poll: " << strerror(errno);
      return;
    }
    if (fds[1].revents) return;
    UniqueFd conn(accept4(socket_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!conn.valid()) continue;  // EAGAIN, ECONNABORTED: the next one
    std::optional<PeerCredentials> peer = CredentialsOf(conn.get());
    if (!peer || !PeerAllowed(*peer, allowed_gid_)) {
      ++refused_;
      MESH_LOG(Warning) << "unix socket " << options_.path << ": refused a connection from "
                        << (peer ? absl::StrCat("pid ", peer->pid, " uid ", peer->uid)
                                 : std::string("an unknown peer"))
                        << " (allowed: root and group " << options_.group << ")";
      continue;  // closed by conn's destructor
    }
    // gRPC owns the fd from here (its transport wants it non-blocking) and closes it.
    grpc::AddInsecureChannelFromFd(server, conn.Release());
  }
}

}  // namespace mesh::agent
