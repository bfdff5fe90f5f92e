// meshd's embedded DNS under load, from a member: meshd in the sandbox, a network with two
// busybox containers, and a client that asks from inside one member's network namespace (so
// its queries come from the member's address, as the member's resolver's would). For each
// phase: queries answered per second and the latency percentiles, with 1 query in flight and
// with a window of them.
//
//   build/release/bench/dns_bench [--seconds=N] [--window=N] [--members=N]
//   (root; runs in the sandbox; --members: other containers on the network, each with an
//   alias, so the zone holds what a lab's does)
//
// Phases: a name of mesh's ("server.bench.", answered from the zone), and a name meshd forwards
// to an upstream (dnsmasq in wan, started here): the second adds dnsmasq's own time and the
// relay. Nothing is asserted on time.
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/atomic_file.h"
#include "base/ns/namespace_handle.h"
#include "base/unique_fd.h"
#include "bench/bench_util.h"
#include "gtest/gtest.h"
#include "tests/support/dns_query.h"
#include "tests/support/meshd_api_test.h"
#include "tests/support/sandbox.h"

namespace mesh::testing {
namespace {

using ::mesh::bench::Ms;
using ::mesh::bench::Summarize;
using ::mesh::bench::WaitForIdleCpus;
using Clock = std::chrono::steady_clock;

constexpr char kGateway[] = "10.91.0.1";

struct Flags {
  int seconds = 5;
  int window = 32;
  int members = 100;  // containers on the network besides client and server
};

// sandbox_main.cc hands argv to gtest only: ours are read back from the command line.
Flags ParseFlags() {
  Flags flags;
  const std::string cmdline = ReadFile("/proc/self/cmdline").value_or("");
  for (absl::string_view arg : absl::StrSplit(cmdline, '\0', absl::SkipEmpty())) {
    for (auto [prefix, value] : {std::pair<const char*, int*>{"--seconds=", &flags.seconds},
                                 std::pair<const char*, int*>{"--window=", &flags.window},
                                 std::pair<const char*, int*>{"--members=", &flags.members}}) {
      if (absl::ConsumePrefix(&arg, prefix) && !absl::SimpleAtoi(arg, value)) {
        std::fprintf(stderr, "dns_bench: ignoring %s%.*s (not a number)\n", prefix,
                     static_cast<int>(arg.size()), arg.data());
      }
    }
  }
  flags.seconds = std::max(flags.seconds, 1);
  flags.window = std::clamp(flags.window, 1, 1024);
  flags.members = std::clamp(flags.members, 0, 250);
  return flags;
}

struct PhaseResult {
  uint64_t answered = 0;
  uint64_t lost = 0;   // no answer within 1 s (asked again)
  uint64_t wrong = 0;  // an answer without the expected record
  double seconds = 0;
  std::vector<double> ms;
};

// Keeps `window` queries for `name` in flight from `fd` for `duration`, each new one sent as
// one is answered; every answer must hold `expect`.
PhaseResult RunPhase(int fd, const char* name, const std::string& expect, int window,
                     absl::Duration duration) {
  PhaseResult r;
  const sockaddr_in to = DnsAddress(kGateway);
  std::map<uint16_t, Clock::time_point> in_flight;
  uint16_t next_id = 1;
  auto send_one = [&] {
    while (in_flight.contains(next_id)) ++next_id;
    const std::string q = QueryWire(name, LDNS_RR_TYPE_A, next_id);
    ::sendto(fd, q.data(), q.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
    in_flight[next_id++] = Clock::now();
  };
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = start + absl::ToChronoNanoseconds(duration);
  for (int i = 0; i < window; ++i) send_one();
  char buf[4096];
  while (Clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) == 1) {
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) continue;
      const Clock::time_point now = Clock::now();
      const DnsAnswer a = ReadDnsAnswer(std::string(buf, static_cast<size_t>(n)));
      auto it = in_flight.find(a.id);
      if (!a.received || it == in_flight.end()) continue;
      r.ms.push_back(Ms(now - it->second));
      ++r.answered;
      if (a.records.empty() || a.records[0] != expect) ++r.wrong;
      in_flight.erase(it);
      send_one();
    }
    const Clock::time_point now = Clock::now();
    for (auto it = in_flight.begin(); it != in_flight.end();) {
      if (now - it->second > std::chrono::seconds(1)) {
        ++r.lost;
        it = in_flight.erase(it);
        send_one();
      } else {
        ++it;
      }
    }
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  // Drain what is still on its way, so the next phase does not read it.
  for (pollfd p{fd, POLLIN, 0}; ::poll(&p, 1, 200) == 1;) (void)::recv(fd, buf, sizeof(buf), 0);
  return r;
}

void Print(const char* what, int window, const PhaseResult& r) {
  if (r.ms.empty()) {
    std::printf("%-34s window %4d: no answers (%lu lost)\n", what, window,
                static_cast<unsigned long>(r.lost));
    return;
  }
  const auto p = Summarize(r.ms);
  std::printf(
      "%-34s window %4d: %8.0f queries/s  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  "
      "(%lu answered, %lu lost, %lu wrong)\n",
      what, window, static_cast<double>(r.answered) / r.seconds, p.p50, p.p90, p.p99,
      static_cast<unsigned long>(r.answered), static_cast<unsigned long>(r.lost),
      static_cast<unsigned long>(r.wrong));
}

// meshd in the sandbox with a cgroup parent of the bench's own ("mesh-test-" so the sandbox
// sweeps what a crashed run leaves).
class DnsBench : public MeshdApiTest {
 protected:
  DnsBench() : MeshdApiTest("mesh-test-dns-bench") {}

  // A sleeping busybox container on "bench", with `alias` there ("": none).
  v1::Container Member(const std::string& name, const std::string& alias) {
    v1::ContainerSpec spec = Spec(name, "exec sleep 100000", "bench");
    if (!alias.empty()) spec.mutable_networks(0)->add_aliases(alias);
    return MustCreate(spec);
  }
};

TEST_F(DnsBench, LocalAndForwardedNamesFromAMember) {
  const Flags flags = ParseFlags();
  CreateNetwork("bench", "10.91.0.0/24");
  const v1::Container server = Member("server", "www");
  Member("client", "");
  for (int i = 0; i < flags.members; ++i) Member(absl::StrCat("m", i), absl::StrCat("alias", i));
  ASSERT_EQ(server.addresses_size(), 1);
  const std::string server_ip = server.addresses(0).ip();

  absl::StatusOr<ChildProcess> dnsmasq = sandbox().Start(
      Sandbox::Ns::kWan, {"dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                          "--no-hosts", "--user=root", "--pid-file=", "--bind-interfaces",
                          absl::StrCat("--listen-address=", Sandbox::kWanAddress),
                          "--address=/outside.test/198.51.100.7", "--cache-size=0"});
  ASSERT_TRUE(dnsmasq.ok()) << dnsmasq.status();

  absl::StatusOr<NamespaceHandle> netns =
      NamespaceHandle::Open(absl::StrCat(Sandbox::kRunDir, "/netns/client"), CLONE_NEWNET);
  ASSERT_TRUE(netns.ok()) << netns.status();
  const UniqueFd fd = UdpSocketIn(*netns);
  ASSERT_TRUE(fd.valid());
  // Warm up (and wait for dnsmasq to answer).
  for (int i = 0; i < 50; ++i) {
    if (AskUdp(fd.get(), kGateway, QueryWire("outside.test.", LDNS_RR_TYPE_A),
               absl::Milliseconds(200))
            .received) {
      break;
    }
  }
  std::printf("\nmeshd DNS from member \"client\" to %s:53, %d s per phase, %d containers\n",
              kGateway, flags.seconds, flags.members + 2);
  const absl::Duration duration = absl::Seconds(flags.seconds);
  for (int window : {1, flags.window}) {
    WaitForIdleCpus();
    Print("local name (server.)", window,
          RunPhase(fd.get(), "server.", server_ip, window, duration));
  }
  for (int window : {1, flags.window}) {
    WaitForIdleCpus();
    Print("forwarded name (outside.test.)", window,
          RunPhase(fd.get(), "outside.test.", "198.51.100.7", window, duration));
  }
  v1::InfoResponse info;
  ASSERT_TRUE(meshd().system().Info(Ctx().get(), v1::InfoRequest(), &info).ok());
  std::printf("meshd counted: %lu queries, %lu answered, %lu forwarded, %lu SERVFAIL\n",
              static_cast<unsigned long>(info.dns().queries()),
              static_cast<unsigned long>(info.dns().answered()),
              static_cast<unsigned long>(info.dns().forwarded()),
              static_cast<unsigned long>(info.dns().servfail()));
}

}  // namespace
}  // namespace mesh::testing
