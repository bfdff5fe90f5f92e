// Not a test of its own: sandbox_test's CrashedTestLeavesNothing runs this binary in a nested
// sandbox. It builds links, an nft table, a netns, a mount and a server, then dies without any
// teardown, as a crashing test would.
#include <cstdio>
#include <cstdlib>

#include "gtest/gtest.h"
#include "tests/support/sandbox.h"

namespace mesh::testing {
namespace {

TEST(SandboxCrashHelper, BuildThenAbort) {
  absl::StatusOr<std::unique_ptr<Sandbox>> sandbox = Sandbox::Create();
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  for (std::vector<std::string> argv : {
           std::vector<std::string>{"ip", "link", "add", "crash-dummy", "type", "bridge"},
           std::vector<std::string>{"nft", "add table ip crash_table"},
           std::vector<std::string>{"ip", "netns", "add", "crash-ns"},
           std::vector<std::string>{"mount", "-t", "tmpfs", "tmpfs", "/run/mesh"},
       }) {
    absl::StatusOr<std::string> r = (*sandbox)->Check(Sandbox::Ns::kHost, argv);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  absl::StatusOr<ChildProcess> server =
      (*sandbox)->StartEchoServer(Sandbox::Ns::kWan, "tcp", Sandbox::kWanAddress, 7100);
  ASSERT_TRUE(server.ok()) << server.status();
  std::printf("crash-helper: built everything, pid %d of server\n", server->pid());
  std::fflush(stdout);
  std::abort();
}

}  // namespace
}  // namespace mesh::testing
