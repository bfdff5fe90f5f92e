// meshd's unix socket with a real gRPC server and client (TESTING.md #21): 0660 from the
// start, root is served, a process of another uid is refused, a stale socket is replaced and
// a live one is not.
#include <grp.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/api/version.h"
#include "agent/server/unix_listener.h"
#include "base/file_lock.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"
#include "mesh/v1/system.grpc.pb.h"
#include "tests/support/meshd_fixture.h"
#include "tests/support/sandbox.h"

namespace mesh::agent {
namespace {

using ::mesh::testing::HealthCheckServes;

constexpr char kSocket[] = "/run/mesh-test-listener/meshd.sock";

// A sync service, which a gRPC server needs to poll its completion queues; Version only.
class VersionService : public v1::SystemService::Service {
  grpc::Status Version(grpc::ServerContext*, const v1::VersionRequest*,
                       v1::VersionResponse* response) override {
    *response = CurrentVersion();
    return grpc::Status::OK;
  }
};

// mesh.v1.SystemService/Version over `target`: the status.
grpc::Status CallVersion(const std::string& target) {
  auto stub =
      v1::SystemService::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::VersionResponse response;
  return stub->Version(&context, v1::VersionRequest(), &response);
}

// Whether a gRPC server answers on the unix socket `path`: sends the HTTP/2 client preface
// and an empty SETTINGS frame and waits up to 5 s for the server's first bytes (its SETTINGS).
// A refused peer reads end-of-file instead. Raw syscalls only: it runs in a child forked from
// this gRPC-threaded process, where gRPC itself may deadlock on locks held by other threads
// at fork time.
bool ServedRaw(const char* path) {
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int fd = sock.get();
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path, sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return false;
  static constexpr char kPreface[] =
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
      "\x00\x00\x00\x04\x00\x00\x00\x00\x00";  // SETTINGS, length 0, stream 0
  if (send(fd, kPreface, sizeof(kPreface) - 1, MSG_NOSIGNAL) !=
      static_cast<ssize_t>(sizeof(kPreface) - 1)) {
    return false;  // EPIPE or ECONNRESET: already closed by the listener
  }
  pollfd pfd{fd, POLLIN, 0};
  if (poll(&pfd, 1, 5000) != 1) return false;
  char byte;
  return read(fd, &byte, 1) == 1;
}

class ListenerTest : public ::mesh::testing::SandboxTest {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;  // no listening ports: connections come from the listener
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    listener_.reset();
    if (server_) server_->Shutdown();
    unlink(absl::StrCat(kSocket, ".lock").c_str());
    rmdir("/run/mesh-test-listener");
    SandboxTest::TearDown();
  }
  // A socket file nobody listens on at kSocket, as an earlier meshd killed with -9 leaves.
  static void MakeStaleSocket() {
    ASSERT_EQ(mkdir("/run/mesh-test-listener", 0755) == 0 || errno == EEXIST, true);
    UniqueFd stale(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, kSocket);
    ASSERT_EQ(bind(stale.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }

  VersionService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<UnixListener> listener_;
};

TEST_F(ListenerTest, SocketIs0660RootIsServedOthersAreRefused) {
  auto listener = UnixListener::Open({.path = kSocket});
  ASSERT_TRUE(listener.ok()) << listener.status();
  listener_ = *std::move(listener);
  struct stat st;
  ASSERT_EQ(stat(kSocket, &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  listener_->Serve(server_.get());

  grpc::Status version = CallVersion(absl::StrCat("unix:", kSocket));
  EXPECT_TRUE(version.ok()) << version.error_message();
  EXPECT_TRUE(HealthCheckServes(absl::StrCat("unix:", kSocket)));
  EXPECT_TRUE(ServedRaw(kSocket)) << "the raw probe the unprivileged child uses fails for root";
  EXPECT_EQ(listener_->refused(), 0);

  // A process of uid/gid 65534 with no groups: refused (the directory and socket are
  // opened up just for the connect, so that it is the listener, not the file mode, that says
  // no).
  ASSERT_EQ(chmod("/run/mesh-test-listener", 0755), 0);
  ASSERT_EQ(chmod(kSocket, 0666), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    _exit(ServedRaw(kSocket) ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the unprivileged peer was served";
  EXPECT_GE(listener_->refused(), 1);
  EXPECT_TRUE(HealthCheckServes(absl::StrCat("unix:", kSocket)));  // root still is
}

TEST_F(ListenerTest, StaleSocketIsReplacedLiveOneIsNot) {
  // A socket file nobody listens on (an earlier meshd killed with -9).
  ASSERT_NO_FATAL_FAILURE(MakeStaleSocket());
  auto listener = UnixListener::Open({.path = kSocket});
  ASSERT_TRUE(listener.ok()) << listener.status();
  listener_ = *std::move(listener);
  listener_->Serve(server_.get());
  EXPECT_TRUE(HealthCheckServes(absl::StrCat("unix:", kSocket)));

  auto second = UnixListener::Open({.path = kSocket});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(second.status().message()).find("another meshd"), std::string::npos)
      << second.status();
  EXPECT_TRUE(HealthCheckServes(absl::StrCat("unix:", kSocket)));  // untouched
  listener_.reset();
  struct stat st;
  EXPECT_NE(stat(kSocket, &st), 0) << "the socket file outlived its listener";
}

TEST_F(ListenerTest, AStartingMeshdHoldsThePathBeforeItsSocketExists) {
  // Two meshd starting at once both find a stale socket: the lock lets only one replace it.
  ASSERT_NO_FATAL_FAILURE(MakeStaleSocket());
  struct stat before;
  ASSERT_EQ(lstat(kSocket, &before), 0);
  {
    absl::StatusOr<UniqueFd> starting = TryLockFile(absl::StrCat(kSocket, ".lock"));
    ASSERT_TRUE(starting.ok()) << starting.status();
    auto second = UnixListener::Open({.path = kSocket});
    EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(std::string(second.status().message())
                  .find("another meshd is serving there or "
                        "starting"),
              std::string::npos)
        << second.status();
    struct stat after;
    ASSERT_EQ(lstat(kSocket, &after), 0) << "the refused listener removed the socket file";
    EXPECT_EQ(after.st_ino, before.st_ino);
  }
  // Once the lock is free, the stale socket is replaced.
  auto listener = UnixListener::Open({.path = kSocket});
  ASSERT_TRUE(listener.ok()) << listener.status();
  listener_ = *std::move(listener);
  listener_->Serve(server_.get());
  EXPECT_TRUE(HealthCheckServes(absl::StrCat("unix:", kSocket)));
}

}  // namespace
}  // namespace mesh::agent
