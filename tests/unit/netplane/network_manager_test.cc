// NetworkManager against fakes (no root): every failure at every kernel step rolls back to
// exactly the state before, and reconcile repairs seeded crash leftovers.
#include "netplane/network/network_manager.h"

#include <arpa/inet.h>
#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "netplane/network/names.h"
#include "netplane/nft/fake_nft_table.h"
#include "netplane/testing/fake_rtnl.h"

namespace mesh::netplane {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// Any network namespace file works as the "container": the fake keys namespaces by inode.
constexpr char kContainerNetns[] = "/proc/self/ns/net";

class NetworkManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mesh-nm-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    MakeManager();
  }
  void TearDown() override {
    manager_.reset();
    std::filesystem::remove_all(dir_);
  }
  // `reaper`: detached veth pairs are deleted in the background (as NetworkManager::Create
  // sets it up) instead of in place.
  void MakeManager(bool reaper = false) {
    manager_.reset();
    auto nft = std::make_unique<nft::FakeNftTable>();
    nft_ = nft.get();
    auto ipam = ipam::Ipam::Open(dir_ + "/ipam");
    ASSERT_TRUE(ipam.ok()) << ipam.status();
    NetworkManagerOptions options{.state_dir = dir_,
                                  .default_pool = *ipam::IpPrefix::Parse("10.88.0.0/16")};
    manager_ = std::make_unique<NetworkManager>(
        options, kernel_.Ops(0), std::move(nft), std::move(*ipam),
        [this](const NamespaceHandle& ns) { return kernel_.Ops(testing::FakeKernel::KeyOf(ns)); },
        reaper ? kernel_.Ops(0) : nullptr);
  }
  // Kernel, nftables and IPAM state, to compare before and after.
  std::string State() {
    // The leases as they are on disk (snapshot plus journal): a copy of the directory, opened
    // by a second Ipam. Not the cursor: it moves on purpose (no immediate reuse of an address).
    const std::string copy = dir_ + "/ipam-copy";
    std::filesystem::remove_all(copy);
    std::filesystem::copy(dir_ + "/ipam", copy);
    auto ipam = ipam::Ipam::Open(copy);
    EXPECT_TRUE(ipam.ok()) << ipam.status();
    std::string leases;
    if (ipam.ok()) {
      for (const std::string& network : (*ipam)->Networks()) {
        absl::StrAppend(&leases, network, ":");
        absl::StatusOr<ipam::PoolSnapshot> pool = (*ipam)->Get(network);
        if (!pool.ok()) continue;
        for (const auto& [address, owner] : pool->leases) {
          absl::StrAppend(&leases, " ", address.ToString(), "=", owner);
        }
        absl::StrAppend(&leases, "\n");
      }
    }
    auto snapshot = manager_->ListAttachments();
    return absl::StrCat(kernel_.Dump(), "--\n", nft_->Dump(), "--\n", leases, "--\n",
                        snapshot.size());
  }
  AttachRequest Request(const std::string& id) {
    return AttachRequest{.container_id = id,
                         .netns_path = kContainerNetns,
                         .network = "front",
                         .ifname = "e-" + id,
                         .ports = {PortMapping{
                             .protocol = Protocol::kTcp, .host_port = 8080, .container_port = 80}}};
  }
  // Request(id) with a static route through a router at .254 and an egress limit.
  AttachRequest Routed(const std::string& id) {
    AttachRequest r = Request(id);
    r.routes = {Route("10.77.2.0/24", "10.88.0.254")};
    r.egress = EgressLimit{.rate_bps = 8'000'000, .burst_bytes = 32768};
    return r;
  }
  static StaticRoute Route(const std::string& destination, const std::string& via) {
    return StaticRoute{*ipam::IpPrefix::Parse(destination), *ipam::IpAddress::Parse(via)};
  }

  std::string dir_;
  testing::FakeKernel kernel_;
  nft::FakeNftTable* nft_ = nullptr;
  std::unique_ptr<NetworkManager> manager_;
};

TEST_F(NetworkManagerTest, AttachBuildsEverythingAndDetachRemovesIt) {
  ASSERT_TRUE(manager_->CreateNetwork({.name = "front"}).ok());
  const std::string before = State();
  auto a = manager_->Attach(Routed("web"));
  ASSERT_TRUE(a.ok()) << a.status();
  const std::string dump = kernel_.Dump();
  EXPECT_THAT(dump, HasSubstr(absl::StrCat("link ", a->host_ifname, " veth")));
  EXPECT_THAT(dump, HasSubstr("addr e-web 10.88.0.2/24"));
  EXPECT_THAT(dump, HasSubstr("default via 10.88.0.1 dev e-web"));
  EXPECT_THAT(dump, HasSubstr("route 10.77.2.0/24 via 10.88.0.254 dev e-web"));
  EXPECT_THAT(dump, HasSubstr("qdisc e-web tbf rate 8000000 burst 32768 limit 52768"));
  EXPECT_THAT(dump, HasSubstr(absl::StrCat("hairpin ", a->host_ifname)));
  EXPECT_THAT(dump, HasSubstr(a->mac));
  EXPECT_THAT(dump, HasSubstr(absl::StrCat("link e-web veth")));
  EXPECT_THAT(dump, HasSubstr(" noipv6"));  // both ends: IPv4 networks carry no IPv6
  EXPECT_THAT(nft_->Dump(), HasSubstr("8080"));
  ASSERT_TRUE(manager_->Detach("web", "front").ok());
  EXPECT_EQ(State(), before);
}

TEST_F(NetworkManagerTest, FailureAtEveryKernelStepOfAttachRollsBackCompletely) {
  ASSERT_TRUE(manager_->CreateNetwork({.name = "front"}).ok());
  const std::string before = State();
  // Count the kernel calls of one successful attach.
  auto calls_before = kernel_.Calls();
  ASSERT_TRUE(manager_->Attach(Routed("probe")).ok());
  auto calls_after = kernel_.Calls();
  ASSERT_TRUE(manager_->Detach("probe", "front").ok());
  ASSERT_EQ(State(), before);

  int injected = 0;
  for (const auto& [method, count] : calls_after) {
    int during_attach = count - calls_before[method];
    for (int nth = 1; nth <= during_attach; ++nth) {
      kernel_.FailAt(method, nth, absl::InternalError("injected"));
      auto r = manager_->Attach(Routed("web"));
      EXPECT_FALSE(r.ok()) << method << " #" << nth;
      EXPECT_THAT(std::string(r.status().message()),
                  HasSubstr("attach container \"web\" to network \"front\""));
      EXPECT_EQ(State(), before) << "after a failure of " << method << " #" << nth;
      ++injected;
    }
  }
  EXPECT_GE(injected, 6);
  // The nftables step too.
  nft_->FailNextApplyForTest(absl::InternalError("injected nft"));
  EXPECT_FALSE(manager_->Attach(Request("web")).ok());
  EXPECT_EQ(State(), before);
  // And a retry succeeds.
  EXPECT_TRUE(manager_->Attach(Request("web")).ok());
}

TEST_F(NetworkManagerTest, FailureAtEveryKernelStepOfCreateNetworkRollsBack) {
  const std::string before = State();
  auto calls_before = kernel_.Calls();
  ASSERT_TRUE(manager_->CreateNetwork({.name = "probe"}).ok());
  auto calls_after = kernel_.Calls();
  ASSERT_TRUE(manager_->DeleteNetwork("probe").ok());
  for (const auto& [method, count] : calls_after) {
    for (int nth = 1; nth <= count - calls_before[method]; ++nth) {
      MakeManager();  // a fresh manager makes the same calls as the probe's (ip_forward too)
      kernel_.FailAt(method, nth, absl::InternalError("injected"));
      auto r = manager_->CreateNetwork({.name = "front"});
      EXPECT_FALSE(r.ok()) << method << " #" << nth;
      EXPECT_THAT(manager_->ListNetworks(), ::testing::IsEmpty());
      EXPECT_THAT(kernel_.Dump(), ::testing::Not(HasSubstr(BridgeName("front"))));
    }
  }
  EXPECT_TRUE(manager_->CreateNetwork({.name = "front"}).ok());
}

// A host port is taken while some attachment publishes it, and free again once none does
// (unpublish, detach, reconcile): the per-port count agrees with the attachments.
TEST_F(NetworkManagerTest, HostPortsAreFreeAgainAfterUnpublishDetachAndReconcile) {
  ASSERT_TRUE(manager_->CreateNetwork({.name = "front"}).ok());
  auto web = manager_->Attach(Request("web"));  // publishes 8080/tcp
  ASSERT_TRUE(web.ok()) << web.status();
  const PortMapping dns{.protocol = Protocol::kUdp, .host_port = 5353, .container_port = 53};
  const PortMapping bound{.host_address = *ipam::IpAddress::Parse("192.0.2.1"),
                          .host_port = 9090,
                          .container_port = 90};
  ASSERT_TRUE(manager_->PublishPort("web", "front", dns).ok());
  ASSERT_TRUE(manager_->PublishPort("web", "front", bound).ok());
  AttachRequest other = Request("other");
  other.ports.clear();
  other.ifname = "eth1";  // the fake's containers share one namespace
  other.default_route = false;
  auto attached = manager_->Attach(other);
  ASSERT_TRUE(attached.ok()) << attached.status();
  // Same protocol/port: taken; the other protocol, or another host address, is not.
  EXPECT_TRUE(absl::IsAlreadyExists(manager_->PublishPort("other", "front", dns)));
  EXPECT_TRUE(absl::IsAlreadyExists(manager_->PublishPort(
      "other", "front", {.host_port = 9090, .container_port = 1})));  // every address
  const PortMapping tcp5353{.host_port = 5353, .container_port = 53};
  ASSERT_TRUE(manager_->PublishPort("other", "front", tcp5353).ok());
  const PortMapping other_address{.host_address = *ipam::IpAddress::Parse("192.0.2.2"),
                                  .host_port = 9090,
                                  .container_port = 90};
  ASSERT_TRUE(manager_->PublishPort("other", "front", other_address).ok());

  ASSERT_TRUE(manager_->UnpublishPort("web", "front", dns).ok());
  const PortMapping dns2{.protocol = Protocol::kUdp, .host_port = 5353, .container_port = 54};
  ASSERT_TRUE(manager_->PublishPort("other", "front", dns2).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(manager_->PublishPort("web", "front", dns)));

  // Reconcile adopts the attachments as given, ports included.
  DesiredState desired;
  desired.networks.push_back(manager_->GetNetwork("front")->config);
  desired.attachments = manager_->ListAttachments();
  ASSERT_TRUE(manager_->Reconcile(desired).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(manager_->PublishPort("web", "front", dns)));
  EXPECT_TRUE(absl::IsAlreadyExists(manager_->Attach(Request("web2")).status()));  // 8080

  ASSERT_TRUE(manager_->Detach("web", "front").ok());
  AttachRequest web2 = Request("web2");
  web2.ifname = "eth2";
  web2.default_route = false;
  web2.ports.push_back({.host_address = *ipam::IpAddress::Parse("192.0.2.1"),
                        .host_port = 9090,
                        .container_port = 90});
  auto again = manager_->Attach(web2);  // 8080/tcp and 192.0.2.1:9090 are free again
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST_F(NetworkManagerTest, PortCollisionsAndBadInputChangeNothing) {
  ASSERT_TRUE(manager_->CreateNetwork({.name = "front"}).ok());
  ASSERT_TRUE(manager_->Attach(Request("web")).ok());
  const std::string before = State();
  auto dup = manager_->Attach(Request("web2"));
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("already published"));
  AttachRequest zero = Request("z");
  zero.ports = {PortMapping{.host_port = 0, .container_port = 80}};
  EXPECT_EQ(manager_->Attach(zero).status().code(), absl::StatusCode::kInvalidArgument);
  AttachRequest bad_name = Request("Bad_Name");
  EXPECT_EQ(manager_->Attach(bad_name).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager_->DeleteNetwork("front").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(State(), before);
}

TEST_F(NetworkManagerTest, ReconcileRemovesOrphansAndRecreatesMissingObjects) {
  auto front = manager_->CreateNetwork({.name = "front"});
  ASSERT_TRUE(front.ok());
  auto web = manager_->Attach(Routed("web"));
  ASSERT_TRUE(web.ok());
  const std::string healthy = State();
  DesiredState desired{.networks = {front->config}, .attachments = {*web}};

  // Crash leftovers: a mesh-named orphan, a foreign link, web's veth gone.
  auto host = kernel_.Ops(0);
  ASSERT_TRUE(host->CreateBridge(BridgeName("gone"), 1500, "mesh network gone").ok());
  ASSERT_TRUE(host->CreateBridge("docker0", 1500, "").ok());
  ASSERT_TRUE(host->DeleteLink(web->host_ifname).ok());

  MakeManager();  // a restarted agent
  ASSERT_TRUE(manager_->Reconcile(desired).ok());
  const std::string dump = kernel_.Dump();
  EXPECT_THAT(dump, ::testing::Not(HasSubstr(BridgeName("gone"))));
  EXPECT_THAT(dump, HasSubstr("link docker0 bridge"));
  EXPECT_THAT(dump, HasSubstr(absl::StrCat("link ", web->host_ifname, " veth")));
  EXPECT_THAT(dump, HasSubstr("addr e-web 10.88.0.2/24"));
  EXPECT_THAT(dump, HasSubstr("route 10.77.2.0/24 via 10.88.0.254 dev e-web"));
  EXPECT_THAT(dump, HasSubstr("qdisc e-web tbf rate 8000000"));
  EXPECT_THAT(nft_->Dump(), HasSubstr("8080"));
  ASSERT_TRUE(host->DeleteLink("docker0").ok());
}

TEST_F(NetworkManagerTest, StaticRoutesNeedANextHopOnTheNetworkAndOneDefaultRoute) {
  ASSERT_TRUE(manager_->CreateNetwork({.name = "front"}).ok());
  const std::string before = State();
  AttachRequest far = Routed("web");
  far.routes = {Route("10.77.2.0/24", "10.99.0.1")};
  absl::StatusOr<AttachResult> refused = manager_->Attach(far);
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("route 10.77.2.0/24 via 10.99.0.1: the next hop is not in the network's "
                        "subnet 10.88.0.0/24"));
  AttachRequest two_defaults = Routed("web");
  two_defaults.routes = {Route("0.0.0.0/0", "10.88.0.254")};
  refused = manager_->Attach(two_defaults);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("route default via 10.88.0.254: the network's gateway is the default "
                        "route"));
  EXPECT_EQ(State(), before);
  // Without the gateway's default route, the container's own one.
  AttachRequest own_default = two_defaults;
  own_default.default_route = false;
  absl::StatusOr<AttachResult> attached = manager_->Attach(own_default);
  ASSERT_TRUE(attached.ok()) << attached.status();
  EXPECT_THAT(kernel_.Dump(), HasSubstr("route 0.0.0.0/0 via 10.88.0.254 dev e-web"));
  EXPECT_THAT(kernel_.Dump(), ::testing::Not(HasSubstr("default via")));
  EXPECT_EQ(attached->routes, own_default.routes);
}

// With the reaper, Detach only retires the pair; the deletion, the stale-flow flush and the
// lease release follow in the background and leave exactly the state before the attach.
TEST_F(NetworkManagerTest, DetachRetiresAtOnceAndTheReaperFinishesTheTeardown) {
  MakeManager(/*reaper=*/true);
  ASSERT_TRUE(manager_->CreateNetwork({.name = "front"}).ok());
  const std::string before = State();
  auto a = manager_->Attach(Request("web"));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(manager_->Detach("web", "front").ok());
  EXPECT_TRUE(manager_->ListAttachments().empty());
  manager_->AwaitDetachedLinks();
  EXPECT_EQ(State(), before);
  EXPECT_EQ(kernel_.Calls()["RetireLink"], 1);
  EXPECT_GE(kernel_.Calls()["DeleteLinkGroup"], 1);
  EXPECT_EQ(kernel_.Calls()["DeleteLink"], 0);
}

// Until the reaper deletes it, a detached pair is cut off in `bridge mesh` (and left up: a
// bridge port going down costs work that grows with the bridge); a rebuild keeps the cut-off,
// and the reaper takes it away with the pair.
TEST_F(NetworkManagerTest, DetachedPairIsCutOffUntilReaped) {
  MakeManager(/*reaper=*/true);
  ASSERT_TRUE(manager_->CreateNetwork({.name = "front"}).ok());
  auto a = manager_->Attach(Request("web"));
  ASSERT_TRUE(a.ok()) << a.status();
  auto retired = [&] {
    std::vector<std::string> names;
    for (const nft::Element& e :
         nft_->GetElements(nft::Family::kBridge, nft::kTableName, nft::kRetiredSet)) {
      names.push_back(e.key[0].ToString());
    }
    return names;
  };
  EXPECT_THAT(retired(), IsEmpty());
  ASSERT_TRUE(manager_->Detach("web", "front").ok());
  // The reaper waits 20 ms for more detaches before it deletes anything.
  EXPECT_THAT(retired(), ElementsAre(absl::StrCat("\"", a->host_ifname, "\"")));
  EXPECT_THAT(manager_->NftState().retired_ports, ElementsAre(a->host_ifname));
  manager_->AwaitDetachedLinks();
  EXPECT_THAT(retired(), IsEmpty());
  EXPECT_THAT(manager_->NftState().retired_ports, IsEmpty());
}

// The same container and interface again, at once: the attach waits for the old pair's names.
TEST_F(NetworkManagerTest, ReattachRightAfterDetachWaitsForTheOldPair) {
  MakeManager(/*reaper=*/true);
  ASSERT_TRUE(manager_->CreateNetwork({.name = "front"}).ok());
  for (int i = 0; i < 5; ++i) {
    auto a = manager_->Attach(Request("web"));
    ASSERT_TRUE(a.ok()) << "round " << i << ": " << a.status();
    ASSERT_TRUE(manager_->Detach("web", "front").ok());
  }
}

// A full pool right after a detach: the last address comes back once its lease is released.
TEST_F(NetworkManagerTest, FullPoolRightAfterDetachWaitsForTheLease) {
  MakeManager(/*reaper=*/true);
  ASSERT_TRUE(
      manager_->CreateNetwork({.name = "front", .subnet = *ipam::IpPrefix::Parse("10.77.0.0/30")})
          .ok());
  auto a = manager_->Attach(Request("a"));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(manager_->Detach("a", "front").ok());
  AttachRequest b = Request("b");
  b.ports.clear();
  auto attached = manager_->Attach(b);
  ASSERT_TRUE(attached.ok()) << attached.status();
  EXPECT_EQ(attached->address, a->address);
}

// A Linux bridge takes 1023 ports: the next attach is a clear error, not a netlink failure,
// and retired pairs that still hold ports are waited for rather than counted against it.
TEST_F(NetworkManagerTest, ABridgeTakesAt1023Containers) {
  MakeManager(/*reaper=*/true);
  ASSERT_TRUE(
      manager_->CreateNetwork({.name = "front", .subnet = *ipam::IpPrefix::Parse("10.70.0.0/16")})
          .ok());
  auto attach = [&](const std::string& id) {
    AttachRequest r = Request(id);
    r.ports.clear();
    r.default_route = false;  // all share the fake's one container namespace
    return manager_->Attach(r);
  };
  for (int i = 0; i < 1023; ++i) {
    auto a = attach(absl::StrCat("c", i));
    ASSERT_TRUE(a.ok()) << i << ": " << a.status();
  }
  auto full = attach("one-too-many");
  EXPECT_TRUE(absl::IsResourceExhausted(full.status())) << full.status();
  EXPECT_THAT(std::string(full.status().message()), HasSubstr("1023 containers"));
  // One detached (retired, maybe not deleted yet): there is room again.
  ASSERT_TRUE(manager_->Detach("c0", "front").ok());
  auto again = attach("one-too-many");
  EXPECT_TRUE(again.ok()) << again.status();
}

// A pair that cannot be retired is deleted in place, as without the reaper.
TEST_F(NetworkManagerTest, PoliciesAreKeptAcrossRebuildsRolledBackOnFailureAndRemoved) {
  nft::PolicyEntry policy;
  policy.group = "shop";
  policy.rules.push_back(nft::PolicyRuleEntry{true, {}, {}, {}, {}, "policy shop rule 1: x"});
  // Before any network there is no table: kept, and in the table made with the first network.
  ASSERT_TRUE(manager_->SetPolicy(policy).ok());
  EXPECT_EQ(nft_->Dump(), "");
  ASSERT_TRUE(manager_->CreateNetwork({.name = "front"}).ok());
  EXPECT_THAT(nft_->Dump(), HasSubstr("policy shop rule 1: x"));
  // A failed change leaves the policy before it, in the kernel and in the manager.
  nft::PolicyEntry changed = policy;
  changed.rules[0].comment = "policy shop rule 1: y";
  nft_->FailNextApplyForTest(absl::UnavailableError("injected"));
  absl::Status s = manager_->SetPolicy(changed);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("policy of group \"shop\""));
  EXPECT_THAT(nft_->Dump(), HasSubstr("policy shop rule 1: x"));
  EXPECT_EQ(manager_->NftState().policies.size(), 1u);
  EXPECT_EQ(manager_->NftState().policies[0].rules[0].comment, "policy shop rule 1: x");
  ASSERT_TRUE(manager_->SetPolicy(changed).ok());
  EXPECT_THAT(nft_->Dump(), HasSubstr("policy shop rule 1: y"));
  // An empty policy is none.
  ASSERT_TRUE(manager_->SetPolicy(nft::PolicyEntry{.group = "shop"}).ok());
  EXPECT_THAT(nft_->Dump(), Not(HasSubstr("policy shop")));
  EXPECT_TRUE(manager_->NftState().policies.empty());
  EXPECT_TRUE(manager_->RemovePolicy("nobody").ok());
}

// An attachment without a name gets the first free ethN: not another attachment's, nor an
// interface the namespace has already (a point-to-point link's end is often eth1).
TEST_F(NetworkManagerTest, UnnamedAttachmentsSkipInterfacesTheNamespaceHas) {
  ASSERT_TRUE(manager_->CreateNetwork({.name = "front"}).ok());
  ASSERT_TRUE(manager_->CreateNetwork({.name = "back"}).ok());
  absl::StatusOr<NamespaceHandle> ns = NamespaceHandle::Open(kContainerNetns, CLONE_NEWNET);
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(kernel_.Ops(testing::FakeKernel::KeyOf(*ns))->CreateBridge("eth1", 1500, "").ok());
  AttachRequest first{.container_id = "r1", .netns_path = kContainerNetns, .network = "front"};
  absl::StatusOr<AttachResult> a = manager_->Attach(first);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->ifname, "eth0");
  AttachRequest second = first;
  second.network = "back";
  absl::StatusOr<AttachResult> b = manager_->Attach(second);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->ifname, "eth2");
}

// `meshctl check`: a probe's trace element, shared by concurrent checks of the same packet,
// kept across a rebuild, gone with the last StopTrace.
TEST_F(NetworkManagerTest, TracesAreCountedAndSurviveRebuilds) {
  in_addr web{}, db{};
  inet_pton(AF_INET, "10.88.0.2", &web);
  inet_pton(AF_INET, "10.88.0.3", &db);
  const nft::TraceEntry probe{web, db, IPPROTO_TCP};
  auto traced = [&] {
    return nft_->ElementCount(nft::Family::kInet, "mesh", "trace4").value_or(99);
  };
  // No network, no table: nothing of mesh on any path.
  EXPECT_TRUE(absl::IsFailedPrecondition(manager_->StartTrace(probe)));
  ASSERT_TRUE(manager_->CreateNetwork({.name = "front"}).ok());
  EXPECT_EQ(traced(), 0u);
  ASSERT_TRUE(manager_->StartTrace(probe).ok());
  ASSERT_TRUE(manager_->StartTrace(probe).ok());  // a second check of the same pair
  EXPECT_EQ(traced(), 1u);
  // A rebuild (a policy change) in between keeps it.
  nft::PolicyEntry policy;
  policy.group = "shop";
  policy.default_deny = true;
  ASSERT_TRUE(manager_->SetPolicy(policy).ok());
  EXPECT_EQ(traced(), 1u);
  manager_->StopTrace(probe);
  EXPECT_EQ(traced(), 1u);
  manager_->StopTrace(probe);
  EXPECT_EQ(traced(), 0u);
  manager_->StopTrace(probe);  // once too often: nothing happens
  EXPECT_TRUE(manager_->NftState().traces.empty());
  // A failed add is not counted.
  nft_->FailNextApplyForTest(absl::UnavailableError("injected"));
  absl::Status s = manager_->StartTrace(probe);
  EXPECT_THAT(s.message(), HasSubstr("trace probes 10.88.0.2 . 10.88.0.3 . tcp"));
  EXPECT_TRUE(manager_->NftState().traces.empty());
}

TEST_F(NetworkManagerTest, FailedRetireDeletesThePairInPlace) {
  MakeManager(/*reaper=*/true);
  ASSERT_TRUE(manager_->CreateNetwork({.name = "front"}).ok());
  const std::string before = State();
  ASSERT_TRUE(manager_->Attach(Request("web")).ok());
  kernel_.FailAt("RetireLink", 1, absl::InternalError("injected"));
  ASSERT_TRUE(manager_->Detach("web", "front").ok());
  EXPECT_EQ(State(), before);  // no waiting needed
  EXPECT_EQ(kernel_.Calls()["DeleteLink"], 1);
}

}  // namespace
}  // namespace mesh::netplane
