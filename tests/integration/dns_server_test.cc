// meshd's DNS server on real sockets, in the sandbox: the server listens on the sandbox host's
// address, clients ask from the wan namespace, the "upstream" is a socket of the test's own in
// wan. Nothing leaves the sandbox.
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "agent/dns/ldns.h"
#include "agent/dns/server.h"
#include "base/ns/namespace_handle.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/dns_query.h"
#include "tests/support/sandbox.h"

namespace mesh::agent::dns {
namespace {

using netplane::ipam::IpAddress;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::QueryWire;
using testing::Sandbox;

IpAddress Ip(const char* text) { return *IpAddress::Parse(text); }

// A UDP socket in wan, bound to `address` (the client's address is what the zone sees).
UniqueFd WanSocket(const NamespaceHandle& wan, const char* address, uint16_t port = 0) {
  UniqueFd fd;
  EXPECT_TRUE(RunInNetns(wan, [&]() -> absl::Status {
                fd = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
                sockaddr_in sa{};
                sa.sin_family = AF_INET;
                sa.sin_port = htons(port);
                inet_pton(AF_INET, address, &sa.sin_addr);
                if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
                  return absl::InternalError("bind");
                }
                return absl::OkStatus();
              }).ok());
  return fd;
}

using Answer = testing::DnsAnswer;
using testing::ReadDnsAnswer;

Answer Ask(int fd, const std::string& query, absl::Duration wait = absl::Seconds(5)) {
  return testing::AskUdp(fd, Sandbox::kHostAddress, query, wait);
}

class DnsServerTest : public testing::SandboxTest {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    // The wan side is the "client network": the zone puts the client there, beside "web".
    zone_.Put({"lab-client", "lab", "client", {{"n", Ip(Sandbox::kWanAddress), {}}}});
    zone_.Put({"lab-web", "lab", "web", {{"n", Ip("203.0.113.80"), {"www"}}}});
    zone_.Put({"other-db", "other", "db", {{"elsewhere", Ip("10.91.0.5"), {}}}});
  }
  void StartServer(ServerOptions options) {
    ASSERT_TRUE(RunInNetns(sandbox().host(), [&]() -> absl::Status {
                  absl::StatusOr<std::unique_ptr<DnsServer>> s =
                      DnsServer::Start(&zone_, std::move(options));
                  if (!s.ok()) return s.status();
                  server_ = *std::move(s);
                  return server_->Listen(Ip(Sandbox::kHostAddress));
                }).ok());
  }
  void TearDown() override {
    server_.reset();
    SandboxTest::TearDown();
  }

  Zone zone_;
  std::unique_ptr<DnsServer> server_;
};

TEST_F(DnsServerTest, AnswersNamesItsClientsMaySeeAndHidesTheRest) {
  StartServer({});
  UniqueFd client = WanSocket(sandbox().wan(), Sandbox::kWanAddress);
  Answer a = Ask(client.get(), QueryWire("web.lab.", LDNS_RR_TYPE_A, 1));
  EXPECT_TRUE(a.received);
  EXPECT_EQ(a.id, 1);
  EXPECT_EQ(a.rcode, LDNS_RCODE_NOERROR);
  EXPECT_THAT(a.records, ElementsAre("203.0.113.80"));
  EXPECT_THAT(Ask(client.get(), QueryWire("lab-web.", LDNS_RR_TYPE_A, 2)).records,
              ElementsAre("203.0.113.80"));
  EXPECT_THAT(Ask(client.get(), QueryWire("www.", LDNS_RR_TYPE_A, 3)).records,
              ElementsAre("203.0.113.80"));
  EXPECT_THAT(
      Ask(client.get(), QueryWire("80.113.0.203.in-addr.arpa.", LDNS_RR_TYPE_PTR, 4)).records,
      ElementsAre("lab-web."));
  // db is on a network the client is not on: NXDOMAIN, not forwarded.
  a = Ask(client.get(), QueryWire("db.other.", LDNS_RR_TYPE_A, 5));
  EXPECT_EQ(a.rcode, LDNS_RCODE_NXDOMAIN);
  // Also when asked in class ANY; other classes are refused, never forwarded (no upstream
  // here: forwarding would have given SERVFAIL).
  EXPECT_EQ(Ask(client.get(), QueryWire("db.other.", LDNS_RR_TYPE_A, 6, LDNS_RR_CLASS_ANY)).rcode,
            LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(
      Ask(client.get(), QueryWire("version.bind.", LDNS_RR_TYPE_TXT, 7, LDNS_RR_CLASS_CH)).rcode,
      LDNS_RCODE_REFUSED);
  EXPECT_EQ(server_->Stats().servfail, 0u);
  EXPECT_THAT(a.records, IsEmpty());
  // No upstream: a name mesh does not know is SERVFAIL at once.
  a = Ask(client.get(), QueryWire("example.org.", LDNS_RR_TYPE_A, 6), absl::Seconds(2));
  EXPECT_EQ(a.rcode, LDNS_RCODE_SERVFAIL);
  // Records change at once.
  zone_.Remove("lab-web");
  EXPECT_EQ(Ask(client.get(), QueryWire("web.lab.", LDNS_RR_TYPE_A, 7)).rcode, LDNS_RCODE_SERVFAIL);
  ServerStats stats = server_->Stats();
  EXPECT_EQ(stats.queries, 9u);
  EXPECT_EQ(stats.answered, 7u);
  EXPECT_EQ(stats.servfail, 2u);
}

TEST_F(DnsServerTest, ForwardsWhatItDoesNotKnowAndFailsFastWhenUpstreamIsGone) {
  // The upstream: a socket of the test in wan, answering each query with one A record.
  UniqueFd upstream = WanSocket(sandbox().wan(), Sandbox::kWanAddress, 5353);
  std::atomic<bool> stop = false;
  std::thread answering([&] {
    while (!stop) {
      pollfd p{upstream.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      char buf[4096];
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      const ssize_t n =
          ::recvfrom(upstream.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0) continue;
      absl::StatusOr<Query> q = ParseQuery(absl::string_view(buf, static_cast<size_t>(n)));
      if (!q.ok()) continue;
      Reply r;
      r.addresses = {Ip("198.51.100.7")};
      r.ttl = 30;
      absl::StatusOr<std::string> wire = BuildResponse(*q, r);
      if (wire.ok()) {
        ::sendto(upstream.get(), wire->data(), wire->size(), 0, reinterpret_cast<sockaddr*>(&from),
                 len);
      }
    }
  });
  ServerOptions options;
  options.upstreams = {Upstream{Ip(Sandbox::kWanAddress), 5353}};
  options.upstream_timeout = absl::Milliseconds(500);
  StartServer(options);
  UniqueFd client = WanSocket(sandbox().wan(), Sandbox::kWanAddress);
  Answer a = Ask(client.get(), QueryWire("example.org.", LDNS_RR_TYPE_A, 0x4242));
  EXPECT_EQ(a.id, 0x4242);  // the upstream saw another id; the client gets its own back
  EXPECT_EQ(a.rcode, LDNS_RCODE_NOERROR);
  EXPECT_THAT(a.records, ElementsAre("198.51.100.7"));
  stop = true;
  answering.join();

  // Nobody answers (the socket is still bound, so no ICMP refuses it): SERVFAIL after the
  // upstream's timeout, not never.
  absl::Time start = absl::Now();
  a = Ask(client.get(), QueryWire("example.org.", LDNS_RR_TYPE_A, 9), absl::Seconds(3));
  EXPECT_EQ(a.rcode, LDNS_RCODE_SERVFAIL);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(450));
  // Nothing there at all: the port is refused, SERVFAIL at once.
  upstream.Reset();
  start = absl::Now();
  a = Ask(client.get(), QueryWire("example.org.", LDNS_RR_TYPE_A, 10), absl::Seconds(3));
  EXPECT_EQ(a.rcode, LDNS_RCODE_SERVFAIL);
  EXPECT_EQ(server_->Stats().forwarded, 1u);
  EXPECT_EQ(server_->Stats().servfail, 2u);
}

TEST_F(DnsServerTest, MalformedPacketsAreCountedAndAnswersGoOn) {
  StartServer({});
  UniqueFd client = WanSocket(sandbox().wan(), Sandbox::kWanAddress);
  const sockaddr_in server = testing::DnsAddress(Sandbox::kHostAddress);
  const std::string good = QueryWire("web.lab.", LDNS_RR_TYPE_A, 1);
  int sent = 0;
  for (int i = 0; i < 500; ++i) {
    std::string junk = i % 2 == 0 ? good.substr(0, static_cast<size_t>(i) % good.size())
                                  : std::string(static_cast<size_t>(i % 300), static_cast<char>(i));
    if (i % 3 == 0 && junk.size() > 2) junk[2] = static_cast<char>(junk[2] | 0x80);  // responses
    if (junk.empty()) continue;
    ::sendto(client.get(), junk.data(), junk.size(), 0, reinterpret_cast<const sockaddr*>(&server),
             sizeof(server));
    ++sent;
  }
  // The burst may overflow the socket's queue (the kernel drops what does not fit, as it
  // would for any server): like a resolver, the client asks again until answered.
  Answer a;
  for (int attempt = 0; attempt < 3 && a.id != 77; ++attempt) {
    a = Ask(client.get(), QueryWire("web.lab.", LDNS_RR_TYPE_A, 77), absl::Seconds(2));
  }
  EXPECT_EQ(a.id, 77);
  EXPECT_THAT(a.records, ElementsAre("203.0.113.80"));
  a = Ask(client.get(), QueryWire("web.lab.", LDNS_RR_TYPE_A, 78));
  EXPECT_EQ(a.id, 78);
  // Every packet of the burst that got in was counted as malformed, none as a query.
  const ServerStats stats = server_->Stats();
  EXPECT_GT(stats.malformed, 0u);
  EXPECT_LE(stats.malformed, static_cast<uint64_t>(sent));
  EXPECT_GE(stats.queries, 2u);
  EXPECT_LE(stats.queries, 4u);
}

TEST_F(DnsServerTest, AnswersOverTcpAndStopsListeningWhenAsked) {
  StartServer({});
  UniqueFd conn;
  ASSERT_TRUE(RunInNetns(sandbox().wan(), [&]() -> absl::Status {
                conn = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
                const sockaddr_in sa = testing::DnsAddress(Sandbox::kHostAddress);
                if (::connect(conn.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) !=
                    0) {
                  return absl::InternalError("connect");
                }
                return absl::OkStatus();
              }).ok());
  // Two queries in one write, as a pipelining client sends them.
  std::string out;
  for (uint16_t id : {11, 12}) {
    const std::string q = QueryWire("web.lab.", LDNS_RR_TYPE_A, id);
    out += std::string{static_cast<char>(q.size() >> 8), static_cast<char>(q.size() & 0xff)} + q;
  }
  ASSERT_EQ(::write(conn.get(), out.data(), out.size()), static_cast<ssize_t>(out.size()));
  std::string in;
  std::vector<uint16_t> ids;
  while (ids.size() < 2) {
    pollfd p{conn.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    char buf[4096];
    const ssize_t n = ::read(conn.get(), buf, sizeof(buf));
    ASSERT_GT(n, 0);
    in.append(buf, static_cast<size_t>(n));
    while (in.size() >= 2) {
      const size_t size = static_cast<uint8_t>(in[0]) << 8 | static_cast<uint8_t>(in[1]);
      if (in.size() < 2 + size) break;
      Answer a = ReadDnsAnswer(in.substr(2, size));
      EXPECT_THAT(a.records, ElementsAre("203.0.113.80"));
      ids.push_back(a.id);
      in.erase(0, 2 + size);
    }
  }
  EXPECT_THAT(ids, ElementsAre(11, 12));
  EXPECT_THAT(server_->Listening(), ElementsAre(Ip(Sandbox::kHostAddress)));
  server_->Unlisten(Ip(Sandbox::kHostAddress));
  EXPECT_THAT(server_->Listening(), IsEmpty());
  UniqueFd client = WanSocket(sandbox().wan(), Sandbox::kWanAddress);
  EXPECT_FALSE(
      Ask(client.get(), QueryWire("web.lab.", LDNS_RR_TYPE_A, 13), absl::Seconds(1)).received);
  // And again, on the same address.
  ASSERT_TRUE(RunInNetns(sandbox().host(), [&] {
                return server_->Listen(Ip(Sandbox::kHostAddress));
              }).ok());
  EXPECT_TRUE(Ask(client.get(), QueryWire("web.lab.", LDNS_RR_TYPE_A, 14)).received);
}

}  // namespace
}  // namespace mesh::agent::dns
