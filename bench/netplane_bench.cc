// netplane latency with N existing attachments, in the test sandbox (never the real host).
//
//   build/release/bench/netplane_bench            (as root; prints a table)
//
// For N in {1, 100, 1000}: a fresh manager and network, N-1 attachments already in place
// (each with a published port), then `kSamples` rounds of
//   attach (veth, address, route, NAT network, one published port), publish one more port,
//   detach (which also removes both ports),
// each timed on its own. Prints p50/p90/p99 per operation and the ratio p50(N=1000)/p50(N=1).
// Containers are plain network namespaces made in-process (unshare on a helper thread), so
// namespace creation is not measured and costs no fork+exec.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/unique_fd.h"
#include "bench/bench_util.h"
#include "gtest/gtest.h"
#include "netplane/network/network_manager.h"
#include "tests/support/sandbox.h"

namespace mesh::netplane {
namespace {

using ::mesh::bench::Ms;
using ::mesh::bench::Percentiles;
using ::mesh::bench::Summarize;

constexpr int kSamples = 200;

// A new network namespace, held by an fd; its path for the manager is /proc/self/fd/N.
UniqueFd NewNetns() {
  UniqueFd fd;
  std::thread([&] {
    if (unshare(CLONE_NEWNET) == 0)
      fd.Reset(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  }).join();
  return fd;
}

std::string PathOf(const UniqueFd& fd) { return absl::StrCat("/proc/self/fd/", fd.get()); }

// Between phases, and before measuring: the kernel's background namespace teardown (NOTES.md)
// must not bleed into the next phase.
void Settle() { ::mesh::bench::WaitForIdleCpus(); }

TEST(NetplaneBench, AttachDetachPublishWithNExisting) {
  MESH_REQUIRE_ROOT();
  std::map<int, std::map<std::string, Percentiles>> results;
  for (int n : {1, 100, 1000}) {
    NetworkManagerOptions options;
    options.state_dir = absl::StrCat(testing::Sandbox::kStateDir, "/bench-", n);
    options.default_pool = *ipam::IpPrefix::Parse("10.88.0.0/16");
    auto manager = NetworkManager::Create(options);
    ASSERT_TRUE(manager.ok()) << manager.status();
    auto& m = **manager;
    ASSERT_TRUE(
        m.CreateNetwork({.name = "bench", .subnet = *ipam::IpPrefix::Parse("10.80.0.0/16")}).ok());

    // N-1 existing attachments share one namespace (distinct interface names), each with a
    // published port: bridge ports, leases and map elements are what N is about.
    UniqueFd shared = NewNetns();
    for (int i = 0; i < n - 1; ++i) {
      AttachRequest r{.container_id = absl::StrCat("old-", i),
                      .netns_path = PathOf(shared),
                      .network = "bench",
                      .ifname = absl::StrCat("e", i),
                      .ports = {PortMapping{.host_port = static_cast<uint16_t>(20000 + i),
                                            .container_port = 80}},
                      .default_route = false};
      auto a = m.Attach(r);
      ASSERT_TRUE(a.ok()) << a.status();
    }
    std::vector<UniqueFd> fresh;
    for (int i = 0; i < kSamples; ++i) fresh.push_back(NewNetns());
    Settle();

    std::vector<double> attach, publish, detach;
    for (int i = 0; i < kSamples; ++i) {
      AttachRequest r{.container_id = absl::StrCat("new-", i),
                      .netns_path = PathOf(fresh[i]),
                      .network = "bench",
                      .ports = {PortMapping{.host_port = 8080, .container_port = 80}}};
      auto t0 = std::chrono::steady_clock::now();
      auto a = m.Attach(r);
      auto t1 = std::chrono::steady_clock::now();
      ASSERT_TRUE(a.ok()) << a.status();
      ASSERT_TRUE(
          m.PublishPort(r.container_id, "bench",
                        {.protocol = Protocol::kUdp, .host_port = 5353, .container_port = 53})
              .ok());
      auto t2 = std::chrono::steady_clock::now();
      ASSERT_TRUE(m.Detach(r.container_id, "bench").ok());
      auto t3 = std::chrono::steady_clock::now();
      attach.push_back(Ms(t1 - t0));
      publish.push_back(Ms(t2 - t1));
      detach.push_back(Ms(t3 - t2));
    }
    results[n] = {{"attach", Summarize(attach)},
                  {"publish", Summarize(publish)},
                  {"detach", Summarize(detach)}};
    for (int i = 0; i < n - 1; ++i) {
      ASSERT_TRUE(m.Detach(absl::StrCat("old-", i), "bench").ok());
    }
    ASSERT_TRUE(m.DeleteNetwork("bench").ok());
    fresh.clear();
    shared.Reset();
    Settle();
  }

  std::printf("\nnetplane latency (ms), %d samples per N\n", kSamples);
  std::printf("%-8s %6s %8s %8s %8s\n", "op", "N", "p50", "p90", "p99");
  for (const char* op : {"attach", "publish", "detach"}) {
    for (auto& [n, by_op] : results) {
      const Percentiles& p = by_op[op];
      std::printf("%-8s %6d %8.3f %8.3f %8.3f\n", op, n, p.p50, p.p90, p.p99);
    }
    if (results.contains(1) && results.contains(1000)) {
      std::printf("%-8s ratio p50(N=1000)/p50(N=1) = %.2f\n", op,
                  results[1000][op].p50 / results[1][op].p50);
    }
  }
}

}  // namespace
}  // namespace mesh::netplane
