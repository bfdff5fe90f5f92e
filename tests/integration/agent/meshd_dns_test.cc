// meshd's embedded DNS end to end (issue 8): a group on two networks in the sandbox, members
// asking by name with busybox's nslookup and wget, and the test asking from inside members'
// network namespaces with queries of its own for exact answer codes. The upstream is a dnsmasq
// the test starts in wan; nothing leaves the sandbox.
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/child_process.h"
#include "base/ns/namespace_handle.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/dns_query.h"
#include "tests/support/meshd_api_test.h"

namespace mesh::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kFrontGateway[] = "10.88.1.1";

class MeshdDnsTest : public MeshdApiTest {
 protected:
  MeshdDnsTest() : MeshdApiTest("mesh-test-dns") { extra_args_ = {"--dns-timeout", "1s"}; }

  // Group "lab": web (front, alias www) serves its name over HTTP; app is on front and back;
  // db (back, alias database). front and back are networks of the group ("lab-front").
  static v1::GroupSpec Lab() {
    v1::GroupSpec spec;
    spec.set_name("lab");
    spec.add_networks()->set_name("front");
    spec.mutable_networks(0)->set_subnet("10.88.1.0/24");
    spec.add_networks()->set_name("back");
    spec.mutable_networks(1)->set_subnet("10.88.2.0/24");
    AddMember(spec, "web", {{"front", "www"}},
              "echo web-here > /index.html && exec httpd -f -p 80 -h /");
    AddMember(spec, "app", {{"front", ""}, {"back", ""}}, "exec sleep 1000");
    AddMember(spec, "db", {{"back", "database"}}, "exec sleep 1000");
    return spec;
  }
  // `networks`: (network, alias or "").
  static void AddMember(v1::GroupSpec& spec, const std::string& name,
                        const std::vector<std::pair<std::string, std::string>>& networks,
                        const std::string& script) {
    v1::ContainerSpec* c = spec.add_containers()->mutable_spec();
    c->set_name(name);
    c->set_image("busybox");
    for (const char* a : {"sh", "-c"}) c->add_args(a);
    c->add_args(script);
    for (const auto& [network, alias] : networks) {
      v1::NetworkAttachment* n = c->add_networks();
      n->set_network(network);
      if (!alias.empty()) n->add_aliases(alias);
    }
  }

  // The member's address on `network` ("lab-front").
  std::string Ip(const std::string& container, const std::string& network) {
    absl::StatusOr<v1::Container> c = Get(container);
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) return "";
    for (const v1::ContainerAddress& a : c->addresses()) {
      if (a.network() == network) return a.ip();
    }
    ADD_FAILURE() << container << " is not on " << network;
    return "";
  }

  // The container's pinned network namespace.
  absl::StatusOr<NamespaceHandle> NetnsOf(const std::string& container) {
    return NamespaceHandle::Open(meshd().options().run_dir + "/netns/" + container, CLONE_NEWNET);
  }
  // A UDP socket inside it: what it sends comes from the container's own address, as the
  // container's resolver would.
  UniqueFd SocketIn(const std::string& container) {
    absl::StatusOr<NamespaceHandle> netns = NetnsOf(container);
    EXPECT_TRUE(netns.ok()) << netns.status();
    return netns.ok() ? UdpSocketIn(*netns) : UniqueFd();
  }
  DnsAnswer Ask(const std::string& from, const char* name, ldns_rr_type type = LDNS_RR_TYPE_A,
                absl::Duration wait = absl::Seconds(5), const char* server = kFrontGateway) {
    UniqueFd fd = SocketIn(from);
    return AskUdp(fd.get(), server, QueryWire(name, type), wait);
  }

  // A UDP socket on address:53 in the sandbox host, bound without SO_REUSEADDR (so meshd's
  // cannot share the port), as another DNS server would hold it. Invalid if the bind failed.
  static UniqueFd Squat(const char* address) {
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    const int one = 1;
    const sockaddr_in sa = DnsAddress(address);
    if (::setsockopt(fd.get(), SOL_IP, IP_FREEBIND, &one, sizeof(one)) != 0 ||
        ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
      return UniqueFd();
    }
    return fd;
  }

  v1::DnsInfo Dns() {
    v1::InfoResponse info;
    grpc::Status status = meshd().system().Info(Ctx().get(), v1::InfoRequest(), &info);
    EXPECT_TRUE(status.ok()) << StatusText(status);
    return info.dns();
  }

  // dnsmasq in wan on its address, answering outside.test with 198.51.100.7 and 2001:db8::7
  // (busybox's nslookup asks for both) and nothing else;
  // waited for until it answers.
  ChildProcess StartUpstream() {
    absl::StatusOr<ChildProcess> dnsmasq = sandbox().Start(
        Sandbox::Ns::kWan,
        {"dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
         "--user=root", "--pid-file=", "--bind-interfaces",
         absl::StrCat("--listen-address=", Sandbox::kWanAddress),
         "--address=/outside.test/198.51.100.7", "--address=/outside.test/2001:db8::7"});
    EXPECT_TRUE(dnsmasq.ok()) << dnsmasq.status();
    if (!dnsmasq.ok()) return {};
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));  // from the sandbox host
    for (int i = 0; i < 100; ++i) {
      if (AskUdp(fd.get(), Sandbox::kWanAddress, QueryWire("outside.test.", LDNS_RR_TYPE_A),
                 absl::Milliseconds(100))
              .received) {
        break;
      }
    }
    return *std::move(dnsmasq);
  }
};

TEST_F(MeshdDnsTest, MembersFindEachOtherByNameGroupNameAliasAndAddress) {
  Apply(Lab());
  const std::string web = Ip("lab-web", "lab-front");
  const std::string db_back = Ip("lab-db", "lab-back");
  const std::string app_front = Ip("lab-app", "lab-front");

  // resolv.conf: the gateway of the first network, the group as the search domain.
  ExecResult conf = Exec("lab-app", {"cat", "/etc/resolv.conf"});
  EXPECT_THAT(conf.out, HasSubstr("nameserver 10.88.1.1\n"));
  EXPECT_THAT(conf.out, HasSubstr("search lab"));
  EXPECT_THAT(Exec("lab-db", {"cat", "/etc/resolv.conf"}).out, HasSubstr("nameserver 10.88.2.1\n"));

  // busybox nslookup from app: by member name (through the search domain), NAME.GROUP, the
  // container's own name, aliases, and reverse.
  for (const char* name : {"web", "web.lab", "lab-web", "www"}) {
    ExecResult r = Exec("lab-app", {"nslookup", name});
    EXPECT_EQ(r.code, 0) << name << ": " << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("Address: ", web))) << name;
  }
  ExecResult r = Exec("lab-app", {"nslookup", "database"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("Address: ", db_back)));
  r = Exec("lab-app", {"nslookup", web});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("lab-web"));
  // And by name through the C library's resolver: wget.
  r = Exec("lab-app", {"wget", "-q", "-O", "-", "http://web/"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "web-here\n");
  r = Exec("lab-app", {"wget", "-q", "-O", "-", "http://www.lab/"});
  EXPECT_EQ(r.out, "web-here\n") << r.err;

  // From the members' own namespaces, exact codes.
  DnsAnswer a = Ask("lab-app", "web.lab.");
  EXPECT_EQ(a.rcode, LDNS_RCODE_NOERROR);
  EXPECT_THAT(a.records, ElementsAre(web));
  EXPECT_THAT(Ask("lab-app", "app.lab.").records,
              ElementsAre(app_front, Ip("lab-app", "lab-back")));
  // web shares no network with db: db's names do not exist for it, and are not forwarded.
  for (const char* hidden : {"db.lab.", "lab-db.", "database."}) {
    a = Ask("lab-web", hidden);
    EXPECT_EQ(a.rcode, LDNS_RCODE_NXDOMAIN) << hidden;
    EXPECT_THAT(a.records, IsEmpty()) << hidden;
  }
  std::vector<std::string> db_octets = absl::StrSplit(db_back, '.');
  const std::string db_reverse = absl::StrCat(db_octets[3], ".", db_octets[2], ".", db_octets[1],
                                              ".", db_octets[0], ".in-addr.arpa.");
  EXPECT_EQ(Ask("lab-web", db_reverse.c_str(), LDNS_RR_TYPE_PTR).rcode, LDNS_RCODE_NXDOMAIN);
  EXPECT_THAT(Ask("lab-app", db_reverse.c_str(), LDNS_RR_TYPE_PTR).records, ElementsAre("lab-db."));
  r = Exec("lab-web", {"nslookup", "db"});
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_THAT(r.out + r.err, HasSubstr("NXDOMAIN"));

  // Names survive meshd's restart (they are made again from the records).
  meshd().Kill9();
  ASSERT_TRUE(meshd().Restart().ok());
  EXPECT_THAT(Ask("lab-app", "database.").records, ElementsAre(db_back));
  const v1::DnsInfo dns = Dns();
  EXPECT_THAT(dns.listening(), ::testing::UnorderedElementsAre("10.88.1.1", "10.88.2.1"));
  EXPECT_THAT(dns.upstreams(), ElementsAre(absl::StrCat(Sandbox::kWanAddress, ":53")));
}

TEST_F(MeshdDnsTest, ForwardsOtherNamesAndFailsFastWithoutAnUpstream) {
  Apply(Lab());
  ChildProcess dnsmasq = StartUpstream();
  ASSERT_TRUE(dnsmasq.running());
  ExecResult r = Exec("lab-web", {"nslookup", "outside.test"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("198.51.100.7"));
  DnsAnswer a = Ask("lab-web", "outside.test.");
  EXPECT_EQ(a.rcode, LDNS_RCODE_NOERROR);
  EXPECT_THAT(a.records, ElementsAre("198.51.100.7"));
  EXPECT_GE(Dns().forwarded(), 2u);

  // The upstream hangs (stopped, its socket still open): SERVFAIL once its timeout (1 s here)
  // is up, not silence.
  ASSERT_TRUE(dnsmasq.Signal(SIGSTOP).ok());
  absl::Time start = absl::Now();
  a = Ask("lab-web", "outside.test.", LDNS_RR_TYPE_A, absl::Seconds(10));
  const absl::Duration hung = absl::Now() - start;
  EXPECT_TRUE(a.received);
  EXPECT_EQ(a.rcode, LDNS_RCODE_SERVFAIL);
  EXPECT_GE(hung, absl::Milliseconds(900));
  EXPECT_LT(hung, absl::Seconds(5)) << "the client would have given up long before";
  // Gone altogether: the port is refused, SERVFAIL at once.
  dnsmasq = ChildProcess();  // SIGKILLed and reaped
  a = Ask("lab-web", "outside.test.", LDNS_RR_TYPE_A, absl::Seconds(10));
  EXPECT_EQ(a.rcode, LDNS_RCODE_SERVFAIL);
  // mesh's own names never needed it.
  EXPECT_THAT(Ask("lab-web", "www.").records, ElementsAre(Ip("lab-web", "lab-front")));
  EXPECT_GE(Dns().servfail(), 2u);
}

// An internal network has no way out, and DNS is none either: names mesh does not know are
// REFUSED to a container on internal networks only, never forwarded; mesh's names still work.
TEST_F(MeshdDnsTest, ContainersOnInternalNetworksOnlyGetNoForwarding) {
  ChildProcess dnsmasq = StartUpstream();
  v1::CreateNetworkRequest request;
  request.mutable_spec()->set_name("sealed");
  request.mutable_spec()->set_subnet("10.88.5.0/24");
  request.mutable_spec()->set_internal(true);
  v1::Network network;
  ASSERT_TRUE(meshd().networks().Create(Ctx().get(), request, &network).ok());
  MustCreate(Spec("vault", "exec sleep 1000", "sealed"));
  MustCreate(Spec("keeper", "exec sleep 1000", "sealed"));
  const DnsAnswer refused =
      Ask("vault", "outside.test.", LDNS_RR_TYPE_A, absl::Seconds(5), "10.88.5.1");
  EXPECT_EQ(refused.rcode, LDNS_RCODE_REFUSED);
  EXPECT_THAT(refused.records, IsEmpty());
  EXPECT_THAT(Ask("vault", "keeper.", LDNS_RR_TYPE_A, absl::Seconds(5), "10.88.5.1").records,
              ElementsAre(Ip("keeper", "sealed")));
  EXPECT_EQ(Dns().forwarded(), 0u);
  // Connected to a network with a way out as well, it is forwarded like any other.
  v1::ConnectRequest connect;
  connect.set_container("keeper");
  connect.set_network("lab-front");
  v1::ConnectResponse connected;
  Apply(Lab());
  ASSERT_TRUE(meshd().networks().Connect(Ctx().get(), connect, &connected).ok());
  EXPECT_THAT(Ask("keeper", "outside.test.", LDNS_RR_TYPE_A, absl::Seconds(5), "10.88.5.1").records,
              ElementsAre("198.51.100.7"));
}

TEST_F(MeshdDnsTest, MalformedBurstIsSurvivedAndAnswersGoOn) {
  Apply(Lab());
  const std::string web = Ip("lab-web", "lab-front");
  UniqueFd fd = SocketIn("lab-app");
  const sockaddr_in to = DnsAddress(kFrontGateway);
  const std::string good = QueryWire("web.lab.", LDNS_RR_TYPE_A);
  std::mt19937 random(8);
  for (int i = 0; i < 2000; ++i) {
    std::string junk;
    switch (i % 4) {
      case 0:  // truncated queries
        junk = good.substr(0, random() % good.size());
        break;
      case 1:  // noise
        junk.resize(random() % 600);
        for (char& c : junk) c = static_cast<char>(random());
        break;
      case 2:  // a response, not a query
        junk = good;
        junk[2] = static_cast<char>(junk[2] | 0x80);
        break;
      default:  // a header that promises records the packet does not hold
        junk = good.substr(0, 12);
        junk[5] = 9;
        break;
    }
    ::sendto(fd.get(), junk.data(), junk.size(), 0, reinterpret_cast<const sockaddr*>(&to),
             sizeof(to));
  }
  // And over TCP: a length that promises more than comes, and noise.
  absl::StatusOr<NamespaceHandle> netns = NetnsOf("lab-app");
  ASSERT_TRUE(netns.ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(RunInNetns(*netns, [&] {
                  UniqueFd tcp(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
                  if (::connect(tcp.get(), reinterpret_cast<const sockaddr*>(&to), sizeof(to)) !=
                      0) {
                    return absl::InternalError("connect");
                  }
                  const std::string junk = i % 2 == 0 ? std::string("\xff\xff\x01\x02", 4)
                                                      : std::string("\x00\x05hello", 7);
                  (void)!::write(tcp.get(), junk.data(), junk.size());
                  return absl::OkStatus();
                }).ok());
  }
  // A burst can overflow the socket's queue (the kernel drops what does not fit): like a
  // resolver, ask again until answered.
  DnsAnswer a;
  for (int attempt = 0; attempt < 5 && !a.received; ++attempt) {
    a = Ask("lab-app", "web.lab.", LDNS_RR_TYPE_A, absl::Seconds(2));
  }
  EXPECT_THAT(a.records, ElementsAre(web));
  ExecResult r = Exec("lab-app", {"nslookup", "web"});
  EXPECT_THAT(r.out, HasSubstr(web));
  EXPECT_TRUE(meshd().running());
  EXPECT_GT(Dns().malformed(), 100u);
}

TEST_F(MeshdDnsTest, RecordsFollowMembersComingAndGoing) {
  Apply(Lab());
  const std::string db_back = Ip("lab-db", "lab-back");
  EXPECT_THAT(Ask("lab-app", "db.lab.").records, ElementsAre(db_back));
  // db leaves the group: its names go with it (the query goes upstream, where nothing answers).
  v1::GroupSpec without_db = Lab();
  without_db.mutable_containers()->RemoveLast();
  Apply(without_db);
  DnsAnswer a = Ask("lab-app", "db.lab.");
  EXPECT_NE(a.rcode, LDNS_RCODE_NOERROR);
  EXPECT_THAT(a.records, IsEmpty());
  EXPECT_THAT(Ask("lab-app", "database.").records, IsEmpty());
  // A new member resolves as soon as Apply returns.
  v1::GroupSpec with_cache = without_db;
  AddMember(with_cache, "cache", {{"back", "redis"}}, "exec sleep 1000");
  Apply(with_cache);
  const std::string cache = Ip("lab-cache", "lab-back");
  EXPECT_THAT(Ask("lab-app", "cache.lab.").records, ElementsAre(cache));
  EXPECT_THAT(Ask("lab-app", "redis.").records, ElementsAre(cache));

  // Connect and disconnect: a container outside the group joins front, with an alias.
  v1::ContainerSpec solo;
  solo.set_name("solo");
  solo.set_image("busybox");
  for (const char* arg : {"sleep", "1000"}) solo.add_args(arg);
  v1::Container created;
  ASSERT_TRUE(Create(solo, &created).ok());
  EXPECT_THAT(Exec("solo", {"cat", "/etc/resolv.conf"}).out, Not(HasSubstr("10.88.")));
  // buddy uses solo's network namespace: its resolver is solo's.
  v1::ContainerSpec buddy = solo;
  buddy.set_name("buddy");
  buddy.set_network_from("solo");
  ASSERT_TRUE(Create(buddy, &created).ok());
  v1::ConnectRequest connect;
  connect.set_container("solo");
  connect.set_network("lab-front");
  connect.add_aliases("lonely");
  v1::ConnectResponse connected;
  grpc::Status status = meshd().networks().Connect(Ctx().get(), connect, &connected);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  const v1::ContainerAddress& address = connected.address();
  EXPECT_THAT(Ask("lab-web", "lonely.").records, ElementsAre(address.ip()));
  EXPECT_THAT(Ask("lab-web", "solo.").records, ElementsAre(address.ip()));
  // Its resolv.conf now names front's gateway, rewritten in place.
  EXPECT_THAT(Exec("solo", {"cat", "/etc/resolv.conf"}).out, HasSubstr("nameserver 10.88.1.1\n"));
  EXPECT_THAT(Exec("buddy", {"cat", "/etc/resolv.conf"}).out, HasSubstr("nameserver 10.88.1.1\n"));
  EXPECT_THAT(Exec("buddy", {"cat", "/etc/hosts"}).out, HasSubstr(address.ip()));
  EXPECT_THAT(Ask("lab-web", "buddy.").records, ElementsAre(address.ip()));
  EXPECT_THAT(Exec("solo", {"nslookup", "web.lab"}).out, HasSubstr(Ip("lab-web", "lab-front")));
  v1::DisconnectRequest disconnect;
  disconnect.set_container("solo");
  disconnect.set_network("lab-front");
  v1::DisconnectResponse disconnected;
  status = meshd().networks().Disconnect(Ctx().get(), disconnect, &disconnected);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_THAT(Ask("lab-web", "lonely.").records, IsEmpty());
  EXPECT_EQ(Ask("lab-web", "buddy.").rcode, LDNS_RCODE_NXDOMAIN);  // mesh's, and not seen

  // Removing a container removes its names at once.
  v1::RemoveContainerRequest remove;
  remove.set_name("lab-cache");
  remove.set_force(true);
  v1::RemoveContainerResponse removed;
  ASSERT_TRUE(meshd().containers().Remove(Ctx().get(), remove, &removed).ok());
  EXPECT_THAT(Ask("lab-app", "redis.").records, IsEmpty());
}

TEST_F(MeshdDnsTest, ANetworkWhoseGatewayPortIsTakenIsRefusedAndLeavesNothing) {
  // Something else already answers on the gateway-to-be's port 53.
  UniqueFd squatter = Squat("10.88.9.1");
  ASSERT_TRUE(squatter.valid());
  const std::string before = Traces();

  v1::CreateNetworkRequest request;
  request.mutable_spec()->set_name("taken");
  request.mutable_spec()->set_subnet("10.88.9.0/24");
  v1::Network network;
  grpc::Status status = meshd().networks().Create(Ctx().get(), request, &network);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.error_message(),
              HasSubstr("network \"taken\": cannot answer DNS on 10.88.9.1 port 53"));
  EXPECT_THAT(status.error_message(), HasSubstr("dns.enabled: false"));
  EXPECT_EQ(Traces(), before);
  v1::GetNetworkRequest get;
  get.set_name("taken");
  EXPECT_EQ(meshd().networks().Get(Ctx().get(), get, &network).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // Once the port is free, the same network can be made.
  squatter.Reset();
  status = meshd().networks().Create(Ctx().get(), request, &network);
  EXPECT_TRUE(status.ok()) << StatusText(status);
}

// At recovery the network exists already: a taken port cannot refuse it, so meshd says so in
// Info (and the log) until the network goes.
TEST_F(MeshdDnsTest, APortTakenWhileMeshdWasDownIsReportedInInfo) {
  CreateNetwork("later", "10.88.9.0/24");
  meshd().Kill9();
  UniqueFd squatter = Squat("10.88.9.1");
  ASSERT_TRUE(squatter.valid());
  ASSERT_TRUE(meshd().Restart().ok());
  v1::DnsInfo dns = Dns();
  EXPECT_THAT(dns.listening(), Not(::testing::Contains("10.88.9.1")));
  ASSERT_EQ(dns.problems_size(), 1) << dns.DebugString();
  EXPECT_THAT(dns.problems(0),
              HasSubstr("network \"later\": cannot answer DNS on 10.88.9.1 port 53"));
  EXPECT_THAT(dns.problems(0), HasSubstr("until the port is free and meshd restarts"));
  v1::RemoveNetworkRequest remove;
  remove.set_name("later");
  v1::RemoveNetworkResponse removed;
  ASSERT_TRUE(meshd().networks().Remove(Ctx().get(), remove, &removed).ok());
  EXPECT_EQ(Dns().problems_size(), 0);
}

// With the DNS off, containers keep the host's resolvers and nothing answers on gateways.
class MeshdWithoutDnsTest : public MeshdApiTest {
 protected:
  MeshdWithoutDnsTest() : MeshdApiTest("mesh-test-dns") { extra_args_ = {"--dns=false"}; }
};

TEST_F(MeshdWithoutDnsTest, ContainersKeepTheHostsResolversAndNoOneAnswers) {
  CreateNetwork("front", "10.88.1.0/24");
  MustCreate(Spec("c", "exec sleep 1000"));
  EXPECT_THAT(Exec("c", {"cat", "/etc/resolv.conf"}).out, Not(HasSubstr("10.88.1.1")));
  v1::InfoResponse info;
  ASSERT_TRUE(meshd().system().Info(Ctx().get(), v1::InfoRequest(), &info).ok());
  EXPECT_FALSE(info.has_dns());
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  EXPECT_FALSE(
      AskUdp(fd.get(), kFrontGateway, QueryWire("c.", LDNS_RR_TYPE_A), absl::Seconds(1)).received);
}

}  // namespace
}  // namespace mesh::testing
