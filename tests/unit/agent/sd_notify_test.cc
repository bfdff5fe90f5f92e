#include "agent/server/sd_notify.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/scoped_temp_dir.h"

namespace mesh::agent {
namespace {

// A unix datagram socket in a temp dir standing in for systemd's notify socket; sets
// $NOTIFY_SOCKET to it for the test's lifetime.
class NotifySocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    path_ = dir_.path() + "/notify";
    socket_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(socket_.valid()) << std::strerror(errno);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    ASSERT_LT(path_.size(), sizeof(address.sun_path));
    std::memcpy(address.sun_path, path_.c_str(), path_.size() + 1);
    ASSERT_EQ(::bind(socket_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0)
        << std::strerror(errno);
    ASSERT_EQ(::setenv("NOTIFY_SOCKET", path_.c_str(), /*overwrite=*/1), 0);
  }
  void TearDown() override { ::unsetenv("NOTIFY_SOCKET"); }

  // The next datagram, or "" if none comes within `timeout_ms`.
  std::string Receive(int timeout_ms = 5000) {
    pollfd p{.fd = socket_.get(), .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, timeout_ms) != 1) return "";
    char buffer[4096];
    ssize_t n = ::recv(socket_.get(), buffer, sizeof(buffer), 0);
    return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
  }

  testing::ScopedTempDir dir_{"/tmp/mesh-sd-notify-test-"};
  std::string path_;
  UniqueFd socket_;
};

TEST_F(NotifySocketTest, ReadyReachesTheNotifySocket) {
  NotifyReady("serving");
  EXPECT_EQ(Receive(), "READY=1\nSTATUS=serving");
  NotifyReady("");
  EXPECT_EQ(Receive(), "READY=1");
}

TEST_F(NotifySocketTest, StatusAndStopping) {
  NotifyStatus("reconciling 3 containers");
  EXPECT_EQ(Receive(), "STATUS=reconciling 3 containers");
  NotifyStopping();
  EXPECT_EQ(Receive(), "STOPPING=1");
}

TEST_F(NotifySocketTest, AStatusStaysOneAssignment) {
  NotifyStatus("one\nMAINPID=1");
  EXPECT_EQ(Receive(), "STATUS=one MAINPID=1");
}

TEST_F(NotifySocketTest, NothingIsSentWithoutNotifySocket) {
  ::unsetenv("NOTIFY_SOCKET");
  NotifyReady("serving");
  NotifyStatus("x");
  NotifyStopping();
  EXPECT_EQ(Receive(/*timeout_ms=*/100), "");
}

TEST_F(NotifySocketTest, AnUnreachableSocketIsLoggedNotFatal) {
  std::vector<std::string> lines;
  log::SetSinkForTest([&](absl::string_view line) { lines.emplace_back(line); });
  std::string missing = dir_.path() + "/missing";
  ASSERT_EQ(::setenv("NOTIFY_SOCKET", missing.c_str(), 1), 0);
  NotifyReady("serving");
  log::SetSinkForTest(nullptr);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], ::testing::HasSubstr("notify systemd"));
  EXPECT_THAT(lines[0], ::testing::HasSubstr("ENOENT"));
}

}  // namespace
}  // namespace mesh::agent
