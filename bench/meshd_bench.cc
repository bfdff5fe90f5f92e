// meshd measured end to end through its gRPC API: the real meshd and mesh-shim in the test
// sandbox (root), driven over the unix socket as meshctl would.
//
//   build/release/bench/meshd_bench [--containers=1000] [--ready=100] [--threads=8]
//                                   [--restarts=5] [--lists=50]
//
// All containers are busybox on one /16 network; the bench process is the sandbox host.
//   1. network ready: `--ready` containers, one after another, each `httpd -f -p 80 -h /`;
//      from sending Create(start=true) until a TCP connect from the host to <its address>:80
//      is accepted (a fresh non-blocking connect every millisecond). Aim: p50 <= 30 ms.
//   2. List(all=true) `--lists` times with `--containers` containers (the rest sleep, created
//      by `--threads` client threads).
//   3. memory at `--containers`: meshd's VmRSS growth, and the mesh-shim processes' (found
//      through /run/mesh/containers/*/state.json), per container.
//   4. recovery: kill -9 meshd and start it again on the same state, `--restarts` times, until
//      it answers Version (as Meshd::Restart does it, then with the stale socket removed
//      first); with the "recovered N containers in X" lines meshd logs.
//   5. Remove(force) of every container, one after another.
// Prints p50/p90/p99/max in ms per phase. A Linux bridge takes at most 1024 ports, so
// --containers above ~1000 fails at the bridge.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <deque>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/atomic_file.h"
#include "base/unique_fd.h"
#include "bench/bench_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/container/cgroup_access.h"
#include "tests/support/meshd_fixture.h"
#include "tests/support/sandbox.h"

namespace mesh::testing {
namespace {

using ::mesh::bench::Ms;
using ::mesh::bench::Percentiles;
using ::mesh::bench::Summarize;
using ::mesh::bench::WaitForIdleCpus;
using Clock = std::chrono::steady_clock;

// "mesh-test-" so the sandbox sweeps what a crashed run leaves; not meshd_test's parent, whose
// meshd would collect the bench's cgroups as orphans if both ran at once.
constexpr char kCgroupParent[] = "mesh-test-meshd-bench";
constexpr char kNetwork[] = "bench";
constexpr char kSubnet[] = "10.90.0.0/16";
constexpr double kReadyAimMs = 30;

struct Flags {
  int containers = 1000;
  int ready = 100;
  int threads = 8;
  int restarts = 5;
  int lists = 50;
};

// sandbox_main.cc owns main() and hands argv to gtest only, which leaves other flags alone:
// ours are read back from the command line.
Flags ParseFlags() {
  Flags flags;
  const std::string cmdline = ReadFile("/proc/self/cmdline").value_or("");
  for (absl::string_view arg : absl::StrSplit(cmdline, '\0', absl::SkipEmpty())) {
    struct {
      const char* prefix;
      int* value;
    } known[] = {{"--containers=", &flags.containers},
                 {"--ready=", &flags.ready},
                 {"--threads=", &flags.threads},
                 {"--restarts=", &flags.restarts},
                 {"--lists=", &flags.lists}};
    for (const auto& [prefix, value] : known) {
      if (absl::ConsumePrefix(&arg, prefix) && !absl::SimpleAtoi(arg, value)) {
        std::fprintf(stderr, "meshd_bench: ignoring %s%.*s (not a number)\n", prefix,
                     static_cast<int>(arg.size()), arg.data());
      }
    }
  }
  flags.containers = std::max(flags.containers, 1);
  flags.ready = std::clamp(flags.ready, 1, flags.containers);
  flags.threads = std::max(flags.threads, 1);
  flags.restarts = std::max(flags.restarts, 1);
  flags.lists = std::max(flags.lists, 1);
  return flags;
}

// A "Key:   123 kB" field of a /proc file, in KiB; 0 if absent.
uint64_t ProcKib(const std::string& path, absl::string_view key) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (!absl::ConsumePrefix(&line, key) || !absl::ConsumePrefix(&line, ":")) continue;
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    uint64_t kib = 0;
    if (!f.empty() && absl::SimpleAtoi(f[0], &kib)) return kib;
  }
  return 0;
}
uint64_t RssKib(pid_t pid) { return ProcKib(absl::StrCat("/proc/", pid, "/status"), "VmRSS"); }
uint64_t PssKib(pid_t pid) { return ProcKib(absl::StrCat("/proc/", pid, "/smaps_rollup"), "Pss"); }

// The shim of every container the runtime has, from <run dir>/containers/*/state.json.
std::vector<pid_t> ShimPids() {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(absl::StrCat(Sandbox::kRunDir, "/containers"), ec)) {
    absl::StatusOr<std::string> state = ReadFile(entry.path().string() + "/state.json");
    if (!state.ok()) continue;
    nlohmann::json j = nlohmann::json::parse(*state, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("shim") && j["shim"].contains("pid")) {
      pids.push_back(j["shim"]["pid"].get<pid_t>());
    }
  }
  return pids;
}

// Waits until a TCP connection from this process to ip:port is accepted. Every millisecond a
// new non-blocking connect() goes out; earlier ones stay in flight (a SYN queued behind
// neighbour resolution is sent when it resolves), and one refused (nothing listens yet) is
// dropped. True once any of them connects.
bool WaitForConnect(const std::string& ip, uint16_t port, absl::Duration timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) return false;
  constexpr size_t kMaxInFlight = 64;
  constexpr auto kTick = std::chrono::milliseconds(1);
  const Clock::time_point deadline =
      Clock::now() + std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout));
  std::deque<UniqueFd> in_flight;
  for (Clock::time_point next = Clock::now(); next < deadline; next += kTick) {
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return false;
    if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
      return true;
    }
    if (errno == EINPROGRESS) in_flight.push_back(std::move(fd));
    if (in_flight.size() > kMaxInFlight) in_flight.pop_front();
    // Until the next tick: collect the attempts that finished.
    for (Clock::time_point now = Clock::now(); now < next + kTick && !in_flight.empty();
         now = Clock::now()) {
      std::vector<pollfd> pfds;
      for (const UniqueFd& f : in_flight) pfds.push_back({f.get(), POLLOUT, 0});
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(next + kTick - now);
      const timespec ts{0, static_cast<long>(left.count())};
      if (ppoll(pfds.data(), pfds.size(), &ts, nullptr) <= 0) break;
      std::deque<UniqueFd> still;
      for (size_t i = 0; i < pfds.size(); ++i) {
        if (pfds[i].revents == 0) {
          still.push_back(std::move(in_flight[i]));
          continue;
        }
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(pfds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
          return true;
        }
      }
      in_flight = std::move(still);
    }
    std::this_thread::sleep_until(next + kTick);
  }
  return false;
}

void PrintHeader(const std::string& title) {
  std::printf("\n%s\n", title.c_str());
  std::printf("  %-34s %8s %8s %8s %8s %6s\n", "", "p50", "p90", "p99", "max", "N");
}

void PrintRow(const std::string& what, const std::vector<double>& ms) {
  const Percentiles p = Summarize(ms);
  std::printf("  %-34s %8.2f %8.2f %8.2f %8.2f %6zu\n", what.c_str(), p.p50, p.p90, p.p99,
              *std::max_element(ms.begin(), ms.end()), ms.size());
}

// The last "recovered N containers in X" line meshd logged.
std::string LastRecoveryLine(const std::string& log) {
  std::string found = "(no recovery line in meshd's log)";
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (const size_t at = line.find("recovered "); at != absl::string_view::npos) {
      found = std::string(line.substr(at));
    }
  }
  return found;
}

class MeshdBench : public SandboxTest {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    MeshdOptions options;
    options.meshd_path = MESHD_PATH;
    options.shim_path = MESH_SHIM_PATH;
    options.extra_args = {"--cgroup-parent", kCgroupParent};
    absl::StatusOr<std::unique_ptr<Meshd>> meshd = Meshd::Start(options);
    ASSERT_TRUE(meshd.ok()) << meshd.status();
    meshd_ = *std::move(meshd);
  }
  void TearDown() override {
    if (meshd_ != nullptr) {
      if (HasFailure()) {
        const std::string log = meshd_->Log();
        std::fprintf(stderr, "---- meshd log (tail) ----\n%s\n",
                     log.substr(log.size() > 8000 ? log.size() - 8000 : 0).c_str());
      }
      // What a failed run left: removed so meshd's exit and the sandbox leave no cgroups.
      if (meshd_->running()) {
        v1::ListContainersRequest list;
        list.set_all(true);
        v1::ListContainersResponse listed;
        if (meshd_->containers().List(Ctx().get(), list, &listed).ok()) {
          for (const v1::Container& c : listed.containers()) Remove(c.spec().name());
        }
      }
      meshd_.reset();
    }
    if (auto driver = runtime::HostCgroupDriver(kCgroupParent); driver.ok()) {
      (*driver)->RemoveParent().IgnoreError();  // still in use only if a container leaked
    }
    SandboxTest::TearDown();
  }

  Meshd& meshd() { return *meshd_; }

  static v1::ContainerSpec Spec(const std::string& name, std::vector<std::string> args) {
    v1::ContainerSpec spec;
    spec.set_name(name);
    spec.set_image("busybox");
    for (std::string& a : args) spec.add_args(std::move(a));
    spec.add_networks()->set_network(kNetwork);
    return spec;
  }
  grpc::Status Create(const v1::ContainerSpec& spec, v1::Container* out) {
    v1::CreateContainerRequest request;
    *request.mutable_spec() = spec;
    request.set_start(true);
    return meshd().containers().Create(Ctx().get(), request, out);
  }
  grpc::Status Remove(const std::string& name) {
    v1::RemoveContainerRequest request;
    request.set_name(name);
    request.set_force(true);
    v1::RemoveContainerResponse response;
    return meshd().containers().Remove(Ctx().get(), request, &response);
  }

  std::unique_ptr<Meshd> meshd_;
};

TEST_F(MeshdBench, ReadyListMemoryRecoveryRemove) {
  const Flags flags = ParseFlags();
  const Clock::time_point bench_start = Clock::now();
  Clock::duration settling{};
  auto settle = [&settling] {
    const Clock::time_point t0 = Clock::now();
    WaitForIdleCpus();
    settling += Clock::now() - t0;
  };
  std::printf(
      "\nmeshd end to end: --containers=%d --ready=%d --threads=%d --restarts=%d "
      "--lists=%d, network %s\n",
      flags.containers, flags.ready, flags.threads, flags.restarts, flags.lists, kSubnet);
  {
    v1::CreateNetworkRequest request;
    request.mutable_spec()->set_name(kNetwork);
    request.mutable_spec()->set_subnet(kSubnet);
    v1::Network network;
    grpc::Status status = meshd().networks().Create(Ctx().get(), request, &network);
    ASSERT_TRUE(status.ok()) << StatusText(status);
  }
  settle();
  const uint64_t meshd_rss_before = RssKib(meshd().pid());

  // 1. Create(start=true) to the first accepted connection, one container after another.
  std::vector<double> ready_ms, rpc_ms, after_rpc_ms;
  for (int i = 0; i < flags.ready; ++i) {
    const v1::ContainerSpec spec = Spec(
        absl::StrCat("web-", i), {"sh", "-c", "echo ok > /index.html && exec httpd -f -p 80 -h /"});
    v1::Container c;
    const Clock::time_point t0 = Clock::now();
    grpc::Status status = Create(spec, &c);
    const Clock::time_point t1 = Clock::now();
    ASSERT_TRUE(status.ok()) << spec.name() << ": " << StatusText(status);
    ASSERT_EQ(c.addresses_size(), 1) << c.DebugString();
    ASSERT_TRUE(WaitForConnect(c.addresses(0).ip(), 80, absl::Seconds(10)))
        << spec.name() << " at " << c.addresses(0).ip() << ":80 never accepted a connection";
    const Clock::time_point t2 = Clock::now();
    ready_ms.push_back(Ms(t2 - t0));
    rpc_ms.push_back(Ms(t1 - t0));
    after_rpc_ms.push_back(Ms(t2 - t1));
  }
  PrintHeader(absl::StrCat("1. create+start to network ready (ms), ", flags.ready,
                           " httpd containers one after another"));
  PrintRow("Create(start=true) to connect", ready_ms);
  PrintRow("  of which the Create RPC", rpc_ms);
  PrintRow("  of which RPC return to connect", after_rpc_ms);
  const double ready_p50 = Summarize(ready_ms).p50;
  std::printf("  aim: p50 <= %.0f ms -> p50 %.2f ms, %s\n", kReadyAimMs, ready_p50,
              ready_p50 <= kReadyAimMs ? "met" : "MISSED");

  // 2. The rest, `sleep`, by several clients at once; then List.
  const int rest = flags.containers - flags.ready;
  std::vector<std::vector<double>> create_ms(static_cast<size_t>(flags.threads));
  std::vector<std::string> errors(static_cast<size_t>(flags.threads));
  std::atomic<int> next{0};
  const Clock::time_point fill_start = Clock::now();
  {
    std::vector<std::thread> clients;
    for (int t = 0; t < flags.threads; ++t) {
      clients.emplace_back([&, t] {
        for (int i = next++; i < rest && errors[t].empty(); i = next++) {
          const v1::ContainerSpec spec = Spec(absl::StrCat("sleep-", i), {"sleep", "100000"});
          v1::Container c;
          const Clock::time_point t0 = Clock::now();
          grpc::Status status = Create(spec, &c);
          create_ms[t].push_back(Ms(Clock::now() - t0));
          if (!status.ok()) errors[t] = absl::StrCat(spec.name(), ": ", StatusText(status));
        }
      });
    }
    for (std::thread& c : clients) c.join();
  }
  const double fill_s = Ms(Clock::now() - fill_start) / 1000;
  for (const std::string& e : errors) ASSERT_TRUE(e.empty()) << e;
  if (rest > 0) {
    std::vector<double> all;
    for (const auto& v : create_ms) all.insert(all.end(), v.begin(), v.end());
    PrintHeader(absl::StrCat("2. List with ", flags.containers, " containers (ms)"));
    PrintRow(absl::StrCat("Create(start=true), ", flags.threads, " clients"), all);
    std::printf("  %d sleep containers created in %.1f s (%.1f per second)\n", rest, fill_s,
                rest / fill_s);
  } else {
    PrintHeader(absl::StrCat("2. List with ", flags.containers, " containers (ms)"));
  }
  settle();
  std::vector<double> list_ms;
  size_t list_bytes = 0;
  for (int i = 0; i < flags.lists; ++i) {
    v1::ListContainersRequest request;
    request.set_all(true);
    v1::ListContainersResponse response;
    const Clock::time_point t0 = Clock::now();
    grpc::Status status = meshd().containers().List(Ctx().get(), request, &response);
    list_ms.push_back(Ms(Clock::now() - t0));
    ASSERT_TRUE(status.ok()) << StatusText(status);
    ASSERT_EQ(response.containers_size(), flags.containers);
    list_bytes = response.ByteSizeLong();
  }
  PrintRow("List(all=true)", list_ms);
  std::printf("  response: %zu bytes (%.0f bytes per container)\n", list_bytes,
              static_cast<double>(list_bytes) / flags.containers);

  // 3. Memory.
  const uint64_t meshd_rss_after = RssKib(meshd().pid());
  const std::vector<pid_t> shims = ShimPids();
  uint64_t shim_rss = 0, shim_pss = 0;
  for (pid_t pid : shims) {
    shim_rss += RssKib(pid);
    shim_pss += PssKib(pid);
  }
  const double n = flags.containers;
  const double meshd_growth =
      static_cast<double>(meshd_rss_after) - static_cast<double>(meshd_rss_before);
  std::printf("\n3. memory at %d containers (%zu shims found in state.json)\n", flags.containers,
              shims.size());
  std::printf(
      "  meshd VmRSS: %llu KiB before any container, %llu KiB at %d: %.1f KiB per "
      "container\n",
      static_cast<unsigned long long>(meshd_rss_before),
      static_cast<unsigned long long>(meshd_rss_after), flags.containers, meshd_growth / n);
  std::printf(
      "  mesh-shim: VmRSS sum %llu KiB: %.1f KiB per container (PSS %.1f KiB: shared "
      "pages counted once)\n",
      static_cast<unsigned long long>(shim_rss), static_cast<double>(shim_rss) / n,
      static_cast<double>(shim_pss) / n);
  std::printf("  per container, shim RSS + meshd growth: %.1f KiB (with shim PSS: %.1f KiB)\n",
              (static_cast<double>(shim_rss) + meshd_growth) / n,
              (static_cast<double>(shim_pss) + meshd_growth) / n);

  // 4. Recovery, twice over: as the fixture restarts (meshd's socket of before the kill is
  // still there, so the client connects early, is refused, and gRPC backs off its reconnect by
  // ~1 s), and with that stale socket removed first (meshd removes it at start anyway), which
  // shows meshd's own time.
  PrintHeader(absl::StrCat("4. kill -9 and restart with ", flags.containers,
                           " containers (ms), until Version answers"));
  std::vector<std::string> recovered;
  for (const bool remove_stale_socket : {false, true}) {
    std::vector<double> restart_ms;
    for (int i = 0; i < flags.restarts; ++i) {
      settle();
      meshd().Kill9();
      if (remove_stale_socket) unlink(meshd().options().socket.c_str());
      const Clock::time_point t0 = Clock::now();
      absl::Status restarted = meshd().Restart({}, absl::Minutes(3));
      restart_ms.push_back(Ms(Clock::now() - t0));
      ASSERT_TRUE(restarted.ok()) << restarted;
      recovered.push_back(LastRecoveryLine(meshd().Log()));
    }
    PrintRow(remove_stale_socket ? "Restart, stale socket removed" : "Restart (Meshd::Restart)",
             restart_ms);
  }
  for (const std::string& line : recovered) std::printf("  meshd: %s\n", line.c_str());
  {
    v1::ListContainersRequest request;
    request.set_all(true);
    v1::ListContainersResponse response;
    ASSERT_TRUE(meshd().containers().List(Ctx().get(), request, &response).ok());
    int running = 0;
    for (const v1::Container& c : response.containers()) {
      if (c.state() == v1::CONTAINER_STATE_RUNNING) ++running;
    }
    EXPECT_EQ(running, flags.containers) << "containers lost across the restarts";
    std::printf("  after the restarts: %d of %d running\n", running, response.containers_size());
  }

  // 5. Removal, one after another.
  settle();
  std::vector<double> remove_ms;
  const Clock::time_point remove_start = Clock::now();
  for (int i = 0; i < flags.containers; ++i) {
    const std::string name =
        i < flags.ready ? absl::StrCat("web-", i) : absl::StrCat("sleep-", i - flags.ready);
    const Clock::time_point t0 = Clock::now();
    grpc::Status status = Remove(name);
    remove_ms.push_back(Ms(Clock::now() - t0));
    ASSERT_TRUE(status.ok()) << name << ": " << StatusText(status);
  }
  const double remove_s = Ms(Clock::now() - remove_start) / 1000;
  PrintHeader(absl::StrCat("5. Remove(force) of ", flags.containers,
                           " running containers (ms), one after another"));
  PrintRow("Remove(force)", remove_ms);
  std::printf("  all removed in %.1f s\n", remove_s);
  v1::RemoveNetworkRequest remove_network;
  remove_network.set_name(kNetwork);
  v1::RemoveNetworkResponse removed_network;
  grpc::Status status = meshd().networks().Remove(Ctx().get(), remove_network, &removed_network);
  EXPECT_TRUE(status.ok()) << StatusText(status);
  EXPECT_TRUE(ShimPids().empty());
  std::printf("\nwall time %.0f s, of which %.0f s waiting for idle CPUs between phases\n",
              Ms(Clock::now() - bench_start) / 1000, Ms(settling) / 1000);
}

}  // namespace
}  // namespace mesh::testing
