#pragma once

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/child_process.h"
#include "base/ns/namespace_handle.h"
#include "gtest/gtest.h"

namespace mesh::testing {

// The test sandbox (DESIGN.md, "Test sandbox").
//
// Every integration test binary links sandbox_main.cc, which runs each test process inside
// fresh network, mount, pid, uts and ipc namespaces: that network namespace plays "the host",
// and /run and /var/lib/mesh are private tmpfs there (so /run/mesh, /run/netns, the state dir
// and the scratch dir $TMPDIR=/run/scratch belong to the test alone). When the test process ends,
// crashes or is killed, the kernel tears all of it down; the launcher then compares the real host's
// network state with what it was before and fails the run on any difference.
//
// A Sandbox object adds the outside world: a network namespace "wan" joined to the sandbox
// host by a veth pair on documentation addresses, with the host's default route via wan.
//
//    sandbox host (the test's netns)             wan (/run/netns/wan)
//    wan0 203.0.113.1/24  <------ veth ------>  eth0 203.0.113.254/24
//    default via 203.0.113.254                   servers: busybox httpd, socat
class Sandbox {
 public:
  static constexpr char kHostAddress[] = "203.0.113.1";
  static constexpr char kWanAddress[] = "203.0.113.254";
  static constexpr int kPrefixLength = 24;
  static constexpr char kHostLink[] = "wan0";  // in the sandbox host
  static constexpr char kWanLink[] = "eth0";   // in wan
  static constexpr char kStateDir[] = "/var/lib/mesh";
  static constexpr char kRunDir[] = "/run/mesh";
  // Scratch space private to the test (also $TMPDIR); gone with the sandbox.
  static constexpr char kScratchDir[] = "/run/scratch";

  // Where a command runs: the sandbox host, wan, or any network namespace.
  enum class Ns { kHost, kWan };
  using Where = std::variant<Ns, const NamespaceHandle*>;

  // Builds wan and the link, after removing what a crashed earlier Sandbox left behind.
  // FailedPrecondition if the process is not inside the sandbox (see sandbox_main.cc).
  static absl::StatusOr<std::unique_ptr<Sandbox>> Create();
  // Removes wan and the link; every server started here is killed by its ChildProcess.
  ~Sandbox();

  const NamespaceHandle& host() const { return host_; }
  const NamespaceHandle& wan() const { return wan_; }

  // Runs a command to completion in `where`. A non-zero exit is not an error: look at .status.
  absl::StatusOr<CommandResult> Run(Where where, std::vector<std::string> argv,
                                    absl::Duration timeout = absl::Seconds(30)) const;
  // Runs a command and returns its stdout; an error unless it exits 0.
  absl::StatusOr<std::string> Check(Where where, std::vector<std::string> argv,
                                    absl::Duration timeout = absl::Seconds(30)) const;
  // Starts a long-running process in `where`, its output discarded. Killed when the returned
  // ChildProcess goes away.
  absl::StatusOr<ChildProcess> Start(Where where, std::vector<std::string> argv) const;

  // busybox httpd serving `dir` on address:port, waited for until it accepts connections.
  absl::StatusOr<ChildProcess> StartHttpServer(Where where, const std::string& address, int port,
                                               const std::string& dir) const;
  // socat echo server on address:port ("tcp" or "udp"); tcp is waited for.
  absl::StatusOr<ChildProcess> StartEchoServer(Where where, const std::string& proto,
                                               const std::string& address, int port) const;
  // Waits until a TCP connection to address:port, made from inside `where`, is accepted.
  absl::Status WaitForPort(Where where, const std::string& address, int port,
                           absl::Duration timeout = absl::Seconds(10)) const;

  // Fetches http://address:port/path from `where` with busybox wget; returns the body.
  absl::StatusOr<std::string> HttpGet(Where where, const std::string& address, int port,
                                      const std::string& path = "/") const;

 private:
  Sandbox(NamespaceHandle host, NamespaceHandle wan)
      : host_(std::move(host)), wan_(std::move(wan)) {}
  int FdOf(Where where) const;

  NamespaceHandle host_;
  NamespaceHandle wan_;
};

// True if this process runs inside the sandbox made by sandbox_main.cc.
bool InSandbox();

// The real host's snapshot (see host_snapshot.h), read through namespace handles the launcher
// kept from before it entered the sandbox.
absl::StatusOr<std::string> TakeRealHostSnapshot();

// Skips the test when not root, except under CI=true where a skip would hide untested code,
// so it fails instead. Use as the first line of SetUp or of a test.
#define MESH_REQUIRE_ROOT()                                                                \
  do {                                                                                     \
    if (::geteuid() != 0) {                                                                \
      if (::mesh::testing::InCi()) {                                                       \
        GTEST_FAIL() << "integration test needs root, and CI=true forbids skipping it";    \
      }                                                                                    \
      GTEST_SKIP() << "integration test needs root (run the suite as root to include it)"; \
    }                                                                                      \
  } while (0)

bool InCi();

// Fixture for integration tests: root required, a fresh Sandbox per test.
class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override { sandbox_.reset(); }
  Sandbox& sandbox() { return *sandbox_; }

  std::unique_ptr<Sandbox> sandbox_;
};

}  // namespace mesh::testing
