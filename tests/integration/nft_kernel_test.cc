// KernelNftTable against the kernel, inside the test sandbox (its own network namespace: the
// machine's real ruleset is never touched, and the launcher checks that it stayed the same).
// `nft list ruleset` is the judge: what mesh programs through libnftnl must read like the
// hand-written reference of NOTES.md.
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/child_process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "netplane/nft/kernel_nft_table.h"
#include "netplane/nft/ruleset.h"
#include "tests/support/sandbox.h"
#include "tests/unit/netplane/nft/sample_state.h"

namespace mesh::netplane::nft {
namespace {

using sample::Addr;
using ::testing::HasSubstr;
using ::testing::Not;

// True if this process's network namespace is not the real host's (the launcher passes an fd
// of the real one). A second guard besides InSandbox(): these tests change nftables.
bool InPrivateNetns() {
  const char* fd_text = std::getenv("MESH_REAL_NETNS_FD");
  int fd = -1;
  struct stat real {
  }, ours{};
  if (fd_text == nullptr || !absl::SimpleAtoi(fd_text, &fd)) return false;
  if (fstat(fd, &real) != 0 || stat("/proc/self/ns/net", &ours) != 0) return false;
  return real.st_ino != ours.st_ino || real.st_dev != ours.st_dev;
}

// `nft list ruleset` with the elements of each set sorted: hash sets list in an order that
// depends on a per-set random seed.
std::string Normalize(const std::string& listing) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t open = listing.find("elements = { ", pos);
    if (open == std::string::npos) break;
    const size_t start = open + 13;
    const size_t close = listing.find(" }", start);
    std::vector<std::string> elements;
    for (absl::string_view e : absl::StrSplit(listing.substr(start, close - start), ',')) {
      elements.emplace_back(absl::StripAsciiWhitespace(e));
    }
    std::sort(elements.begin(), elements.end());
    absl::StrAppend(&out, listing.substr(pos, start - pos), absl::StrJoin(elements, ", "));
    pos = close;
  }
  return out + listing.substr(pos);
}

// What `nft list ruleset` shows for sample::State(): two networks (front with NAT, lab
// internal) and two published ports (one bound to 203.0.113.1), elements sorted.
constexpr char kSampleRuleset[] =
    "table inet mesh {\n"
    "\tcomment \"mesh container networks: managed by meshd, do not edit\"\n"
    "\tset bridges {\n"
    "\t\ttype ifname\n"
    "\t\tcomment \"bridges of all mesh networks\"\n"
    "\t\telements = { \"mbr-front\" comment \"front\", \"mbr-lab\" comment \"lab\" }\n"
    "\t}\n"
    "\n"
    "\tset same_network {\n"
    "\t\ttype ifname . ifname\n"
    "\t\tcomment \"bridge . bridge of every network\"\n"
    "\t\telements = { \"mbr-front\" . \"mbr-front\" comment \"front\", \"mbr-lab\" . \"mbr-lab\" "
    "comment \"lab\" }\n"
    "\t}\n"
    "\n"
    "\tset internal {\n"
    "\t\ttype ifname\n"
    "\t\tcomment \"bridges of internal networks\"\n"
    "\t\telements = { \"mbr-lab\" comment \"lab\" }\n"
    "\t}\n"
    "\n"
    "\tset nat_subnets4 {\n"
    "\t\ttype ipv4_addr\n"
    "\t\tflags interval\n"
    "\t\tcomment \"subnets masqueraded to the outside\"\n"
    "\t\telements = { 10.88.0.0/24 comment \"front\" }\n"
    "\t}\n"
    "\n"
    "\tmap published4 {\n"
    "\t\ttype inet_proto . inet_service : ipv4_addr . inet_service\n"
    "\t\tcomment \"published ports\"\n"
    "\t\telements = { tcp . 8080 comment \"web-1/front\" : 10.88.0.2 . 80 }\n"
    "\t}\n"
    "\n"
    "\tmap published4_bound {\n"
    "\t\ttype ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service\n"
    "\t\tcomment \"ports published on one host address\"\n"
    "\t\telements = { 203.0.113.1 . udp . 5353 comment \"dns/lab\" : 10.88.1.3 . 53 }\n"
    "\t}\n"
    "\n"
    "\tset trace4 {\n"
    "\t\ttype ipv4_addr . ipv4_addr . inet_proto\n"
    "\t\tcomment \"probes of meshctl check: source . destination . protocol\"\n"
    "\t}\n"
    "\n"
    "\tchain forward {\n"
    "\t\tcomment \"isolation between mesh networks\"\n"
    "\t\ttype filter hook forward priority filter; policy accept;\n"
    "\t\tct state established,related accept comment \"replies and related traffic\"\n"
    "\t\tiifname @internal iifname . oifname != @same_network drop comment \"internal networks "
    "have "
    "no way out\"\n"
    "\t\toifname @internal iifname . oifname != @same_network drop comment \"internal networks "
    "have "
    "no way in\"\n"
    "\t\tiifname . oifname @same_network accept comment \"inside one network\"\n"
    "\t\tct status dnat accept comment \"published ports, hairpin included\"\n"
    "\t\tiifname @bridges oifname @bridges drop comment \"networks are isolated from each other\"\n"
    "\t}\n"
    "\n"
    "\tchain input {\n"
    "\t\tcomment \"internal networks reach only their gateway\"\n"
    "\t\ttype filter hook input priority filter; policy accept;\n"
    "\t\tiifname @internal fib daddr . iif type != local drop comment \"internal networks reach "
    "only their gateway\"\n"
    "\t}\n"
    "\n"
    "\tchain prerouting {\n"
    "\t\tcomment \"published ports, from outside and from containers\"\n"
    "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
    "\t\tfib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @published4_bound "
    "comment \"ports published on one host address\"\n"
    "\t\tfib daddr type local dnat ip to meta l4proto . th dport map @published4 comment \"ports "
    "published on every host address\"\n"
    "\t}\n"
    "\n"
    "\tchain output {\n"
    "\t\tcomment \"published ports, from the host itself\"\n"
    "\t\ttype nat hook output priority -100; policy accept;\n"
    "\t\tfib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @published4_bound "
    "comment \"ports published on one host address\"\n"
    "\t\tfib daddr type local dnat ip to meta l4proto . th dport map @published4 comment \"ports "
    "published on every host address\"\n"
    "\t}\n"
    "\n"
    "\tchain postrouting {\n"
    "\t\tcomment \"outbound NAT and hairpin\"\n"
    "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
    "\t\tip saddr @nat_subnets4 oifname != @bridges masquerade comment \"outbound NAT\"\n"
    "\t\tct status dnat ip saddr @nat_subnets4 oifname @bridges masquerade comment \"hairpin to "
    "published ports\"\n"
    "\t}\n"
    "\n"
    "\tchain trace {\n"
    "\t\tcomment \"nftrace on the probes of meshctl check\"\n"
    "\t\ttype filter hook prerouting priority raw; policy accept;\n"
    "\t\tip saddr . ip daddr . meta l4proto @trace4 meta nftrace set 1 comment \"probes of "
    "meshctl check\"\n"
    "\t}\n"
    "}\n"
    "table bridge mesh {\n"
    "\tcomment \"mesh: detached containers cut off until their veth pair is deleted\"\n"
    "\tset retired {\n"
    "\t\ttype ifname\n"
    "\t\tcomment \"host ends of detached veth pairs\"\n"
    "\t}\n"
    "\n"
    "\tchain prerouting {\n"
    "\t\tcomment \"detached containers\"\n"
    "\t\ttype filter hook prerouting priority filter; policy accept;\n"
    "\t\tiifname @retired drop comment \"nothing from a detached container\"\n"
    "\t}\n"
    "\n"
    "\tchain forward {\n"
    "\t\tcomment \"detached containers\"\n"
    "\t\ttype filter hook forward priority filter; policy accept;\n"
    "\t\toifname @retired drop comment \"nothing bridged to a detached container\"\n"
    "\t}\n"
    "\n"
    "\tchain output {\n"
    "\t\tcomment \"detached containers\"\n"
    "\t\ttype filter hook output priority filter; policy accept;\n"
    "\t\toifname @retired drop comment \"nothing from the host to a detached container\"\n"
    "\t}\n"
    "}\n";

class NftKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MESH_REQUIRE_ROOT();
    ASSERT_TRUE(mesh::testing::InSandbox() && InPrivateNetns())
        << "refusing to change nftables outside the test sandbox's network namespace";
    absl::StatusOr<std::unique_ptr<KernelNftTable>> nft = KernelNftTable::Create();
    ASSERT_TRUE(nft.ok()) << nft.status();
    nft_ = std::move(*nft);
  }

  // Runs nft(8) in this (the sandbox's) network namespace; its stdout.
  std::string Nft(std::vector<std::string> args) {
    args.insert(args.begin(), "nft");
    SpawnOptions options;
    options.argv = args;
    absl::StatusOr<CommandResult> r = RunCommand(options);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    EXPECT_TRUE(r->status.ok()) << absl::StrJoin(args, " ") << ": " << r->status.ToString() << "\n"
                                << r->err;
    return r->out;
  }
  std::string Ruleset() { return Normalize(Nft({"list", "ruleset"})); }

  void Apply(const Transaction& t) {
    absl::Status s = nft_->Apply(t);
    ASSERT_TRUE(s.ok()) << s << "\n" << t.ToString();
  }

  std::unique_ptr<KernelNftTable> nft_;
};

TEST_F(NftKernelTest, FullRebuildListsAsTheReference) {
  ASSERT_EQ(Ruleset(), "");  // a fresh namespace
  Apply(FullRebuild(sample::State()));
  EXPECT_EQ(Ruleset(), kSampleRuleset);
}

TEST_F(NftKernelTest, ListingLoadsBackIntoNftIdentically) {
  // What nft prints from mesh's table, fed to nft in a fresh namespace, gives the same
  // listing: the types, byte orders and comments mesh writes are what nft itself writes.
  Apply(FullRebuild(sample::State()));
  const std::string listing = Nft({"list", "ruleset"});
  const std::string file = absl::StrCat(mesh::testing::Sandbox::kScratchDir, "/mesh.nft");
  std::ofstream(file) << listing;
  SpawnOptions options;
  options.argv = {"unshare", "--net", "sh", "-c",
                  absl::StrCat("nft -f ", file, " && nft list ruleset")};
  absl::StatusOr<CommandResult> r = RunCommand(options);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->status.ok()) << r->err;
  EXPECT_EQ(Normalize(r->out), Normalize(listing));
}

TEST_F(NftKernelTest, AddPortTwiceIsAlreadyExistsAndChangesNothing) {
  Apply(FullRebuild(sample::State()));
  const std::string before = Ruleset();
  absl::Status s = nft_->Apply(AddPort(sample::WebPort()));
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(),
            "nftables: add element to map \"published4\" in table inet mesh "
            "(tcp . 8080 : 10.88.0.2 . 80): File exists (EEXIST)");
  EXPECT_EQ(Ruleset(), before);
}

TEST_F(NftKernelTest, FailedBatchAppliesNothing) {
  Apply(FullRebuild(sample::State()));
  const std::string before = Ruleset();
  Transaction t = AddPort({IPPROTO_TCP, std::nullopt, 9090, Addr("10.88.0.4"), 90, "new"});
  t.Append(AddPort(sample::DnsPort()));  // fails: already published
  t.Append(AddNetwork({"c", "mbr-c", Addr("10.88.9.0"), 24, true, false}));
  absl::Status s = nft_->Apply(t);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(),
            "nftables: add element to map \"published4_bound\" in table inet mesh "
            "(203.0.113.1 . udp . 5353 : 10.88.1.3 . 53): File exists (EEXIST)");
  EXPECT_EQ(Ruleset(), before);
  EXPECT_THAT(Ruleset(), Not(HasSubstr("9090")));
}

TEST_F(NftKernelTest, FullRebuildRepairsWhateverIsThere) {
  Apply(FullRebuild(sample::State()));
  Apply(FullRebuild(sample::State()));  // on an existing table
  EXPECT_EQ(Ruleset(), kSampleRuleset);

  Nft({"flush", "table", "inet", "mesh"});  // rules (and, with newer nft, elements) gone
  ASSERT_NE(Ruleset(), kSampleRuleset);
  Apply(FullRebuild(sample::State()));
  EXPECT_EQ(Ruleset(), kSampleRuleset);

  Nft({"flush", "chain", "inet", "mesh", "forward"});
  Nft({"add", "element", "inet", "mesh", "bridges", "{ stray }"});
  Nft({"add", "chain", "inet", "mesh", "extra"});
  ASSERT_NE(Ruleset(), kSampleRuleset);
  Apply(FullRebuild(sample::State()));
  EXPECT_EQ(Ruleset(), kSampleRuleset);

  Nft({"delete", "table", "inet", "mesh"});
  Apply(FullRebuild(sample::State()));
  EXPECT_EQ(Ruleset(), kSampleRuleset);
}

TEST_F(NftKernelTest, ForeignTablesStayByteIdentical) {
  Nft({"add", "table", "ip", "other"});
  Nft({"add", "chain", "ip", "other", "input",
       "{ type filter hook input priority 0; policy accept; }"});
  Nft({"add", "rule", "ip", "other", "input", "tcp", "dport", "22", "accept", "comment",
       "\"theirs\""});
  Nft({"add", "set", "ip", "other", "bridges", "{ type ifname; elements = { \"mbr-front\" }; }"});
  Nft({"add", "table", "inet", "other"});
  const std::string before = Nft({"list", "ruleset"});

  Apply(FullRebuild(sample::State()));
  Apply(FullRebuild(sample::State()));
  Apply(AddNetwork({"x", "mbr-x", Addr("10.88.5.0"), 24, true, true}));
  Apply(AddPort({IPPROTO_TCP, Addr("203.0.113.1"), 22, Addr("10.88.5.2"), 22, "x"}));
  Apply(RemovePort({IPPROTO_TCP, Addr("203.0.113.1"), 22, Addr("10.88.5.2"), 22, "x"}));
  Apply(RemoveNetwork({"x", "mbr-x", Addr("10.88.5.0"), 24, true, true}));
  Apply(DeleteTable());

  EXPECT_EQ(Nft({"list", "ruleset"}), before);
}

TEST_F(NftKernelTest, HotPathChangesElementsOnly) {
  Apply(FullRebuild(sample::State()));
  const std::string rules_only = Nft({"-t", "list", "ruleset"});  // -t: sets without elements
  // A NAT network right after front: its range starts where front's ends.
  NetworkEntry next{"next", "mbr-next", Addr("10.88.1.0"), 24, true, false};
  Apply(AddNetwork(next));
  EXPECT_THAT(Ruleset(), HasSubstr("elements = { 10.88.0.0/24 comment \"front\", 10.88.1.0/24 "
                                   "comment \"next\" }"));
  Apply(RemoveNetwork(sample::Front()));
  Apply(RemoveNetwork(sample::Front()));  // idempotent
  // The kernel's lookup, not only the listing: 10.88.1.5 is in, 10.88.0.5 is not.
  EXPECT_THAT(Nft({"get", "element", "inet", "mesh", "nat_subnets4", "{ 10.88.1.5 }"}),
              HasSubstr("10.88.1.0/24"));
  SpawnOptions get;
  get.argv = {"nft", "get", "element", "inet", "mesh", "nat_subnets4", "{ 10.88.0.5 }"};
  absl::StatusOr<CommandResult> absent = RunCommand(get);
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->status.ok());
  EXPECT_THAT(Ruleset(), Not(HasSubstr("mbr-front")));

  Apply(RemovePort(sample::WebPort()));
  Apply(RemovePort(sample::WebPort()));
  EXPECT_THAT(Ruleset(), Not(HasSubstr("8080")));
  Apply(AddPort(sample::WebPort()));
  EXPECT_THAT(Ruleset(), HasSubstr("tcp . 8080 comment \"web-1/front\" : 10.88.0.2 . 80"));
  EXPECT_EQ(Nft({"-t", "list", "ruleset"}), rules_only);  // same rules throughout
}

TEST_F(NftKernelTest, RemovePortNeverRemovesAnotherContainersMapping) {
  Apply(FullRebuild(sample::State()));
  PortEntry other = sample::WebPort();
  other.container_address = Addr("10.88.0.99");
  absl::Status s = nft_->Apply(RemovePort(other));
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(),
            "nftables: ensure element in map \"published4\" in table inet mesh "
            "(tcp . 8080 : 10.88.0.99 . 80): File exists (EEXIST); it exists with different "
            "contents");
  EXPECT_EQ(Ruleset(), kSampleRuleset);
}

TEST_F(NftKernelTest, HotPathWithoutTheTableIsNotFound) {
  absl::Status s = nft_->Apply(AddPort(sample::WebPort()));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("add element to map \"published4\" in table inet mesh"));
  Apply(DeleteTable());  // idempotent: nothing to delete
  EXPECT_EQ(Ruleset(), "");
}

TEST_F(NftKernelTest, ThousandsOfElementsInOneTransaction) {
  // Several hundred KiB: more than the default socket buffers, many element messages.
  Apply(FullRebuild(sample::Scaled(3000)));
  const std::string listing = Nft({"list", "set", "inet", "mesh", "bridges"});
  EXPECT_EQ(std::count(listing.begin(), listing.end(), ','), 2999);
  const std::string ports = Nft({"list", "map", "inet", "mesh", "published4"});
  EXPECT_EQ(std::count(ports.begin(), ports.end(), ':'), 3000 + 1);  // + the type line
  Apply(FullRebuild(sample::State()));
  EXPECT_EQ(Ruleset(), kSampleRuleset);
}

TEST_F(NftKernelTest, ThousandsOfCommandsAreEachAnswered) {
  // One message per command and one answer per message: far more answers than the default
  // receive buffer holds.
  Apply(FullRebuild({}));
  const DesiredState big = sample::Scaled(3000);
  Transaction t;
  for (const PortEntry& p : big.ports) t.Append(AddPort(p));
  Apply(t);
  auto published = [&] {
    const std::string map = Nft({"list", "map", "inet", "mesh", "published4"});
    return std::count(map.begin(), map.end(), ':') - 1;  // minus the type line
  };
  EXPECT_EQ(published(), 3000);
  // Near the end of a long batch, a failure still names its own command, and the thousands of
  // commands before it are undone.
  Transaction more;
  for (int i = 0; i < 2999; ++i) {
    more.Append(AddPort({IPPROTO_UDP, std::nullopt, static_cast<uint16_t>(20000 + i),
                         Addr("10.100.0.2"), 53, "more"}));
  }
  more.Append(AddPort(big.ports[2500]));
  absl::Status s = nft_->Apply(more);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(s.message(), HasSubstr("(tcp . 12500 : 10.109.196.2 . 80)"));
  EXPECT_EQ(published(), 3000);
}

TEST_F(NftKernelTest, WithoutCapNetAdminIsPermissionDenied) {
  // Capabilities are per thread, and the kernel checks the sender's at each send: drop
  // CAP_NET_ADMIN in a thread of our own and apply from there.
  absl::Status status;
  std::thread thread([&] {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    ASSERT_EQ(syscall(SYS_capget, &header, data), 0);
    data[CAP_TO_INDEX(CAP_NET_ADMIN)].effective &= ~CAP_TO_MASK(CAP_NET_ADMIN);
    ASSERT_EQ(syscall(SYS_capset, &header, data), 0);
    status = nft_->Apply(FullRebuild(sample::State()));
  });
  thread.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(status.message(),
            "nftables: apply a transaction of 46 commands: Operation not permitted (EPERM); "
            "changing nftables needs CAP_NET_ADMIN");
  EXPECT_EQ(Ruleset(), "");
  Apply(FullRebuild(sample::State()));  // the same socket still works for a capable thread
  EXPECT_EQ(Ruleset(), kSampleRuleset);
}

TEST_F(NftKernelTest, SocketIsCloexecAndPortIdIsItsNetlinkPort) {
  ASSERT_NE(nft_->portid(), 0u);
  // /proc/net/netlink lists every netlink socket of this namespace with its protocol (12 is
  // NETLINK_NETFILTER), port id and inode.
  std::ifstream netlink("/proc/self/net/netlink");
  std::string line, inode;
  std::getline(netlink, line);  // header
  while (std::getline(netlink, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() >= 10 && f[1] == "12" && f[2] == absl::StrCat(nft_->portid())) inode = f[9];
  }
  ASSERT_FALSE(inode.empty()) << "no NETLINK_NETFILTER socket with port " << nft_->portid();
  bool found = false;
  for (int fd = 0; fd < 1024; ++fd) {
    char target[64] = {};
    const std::string link = absl::StrCat("/proc/self/fd/", fd);
    if (readlink(link.c_str(), target, sizeof(target) - 1) <= 0) continue;
    if (absl::string_view(target) != absl::StrCat("socket:[", inode, "]")) continue;
    found = true;
    EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace mesh::netplane::nft
