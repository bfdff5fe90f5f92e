#include "netplane/ipam/ipam.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/netplane/ipam/test_util.h"

namespace mesh::netplane::ipam {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

// Any error code: for failures whose errno (and so code) is the kernel's business.
MATCHER_P(IsErrorWith, substring, "") {
  const absl::Status& status = StatusOf(arg);
  *result_listener << "status is " << status;
  return !status.ok() && absl::StrContains(status.message(), substring);
}

bool SameSnapshot(const PoolSnapshot& a, const PoolSnapshot& b) {
  return a.subnet == b.subnet && a.gateway == b.gateway && a.leases == b.leases;
}

// Journal lines and snapshots as Ipam writes them, for files written by hand.
std::string AllocateLine(uint64_t seq, absl::string_view address, absl::string_view owner,
                         bool moves_cursor = true) {
  return absl::StrCat("{\"address\":\"", address, "\",",
                      moves_cursor ? absl::StrCat("\"last\":\"", address, "\",") : "",
                      "\"op\":\"allocate\",\"owner\":\"", owner, "\",\"seq\":", seq, "}\n");
}
std::string ReleaseLine(uint64_t seq, absl::string_view address, absl::string_view owner) {
  return absl::StrCat("{\"address\":\"", address, "\",\"op\":\"release\",\"owner\":\"", owner,
                      "\",\"seq\":", seq, "}\n");
}
// A 10.88.1.0/24 pool with gateway 10.88.1.1; `leases` is the inside of a JSON object.
std::string FrontSnapshot(uint64_t seq, absl::string_view last, absl::string_view leases) {
  return absl::StrCat("{\"gateway\":\"10.88.1.1\",",
                      last.empty() ? "" : absl::StrCat("\"last\":\"", last, "\","), "\"leases\":{",
                      leases, "},\"seq\":", seq, ",\"subnet\":\"10.88.1.0/24\",\"version\":2}\n");
}

const std::string kAllocateLine1 = AllocateLine(1, "10.88.1.2", "a/eth0");

// Lowers RLIMIT_FSIZE while it lives, so writes past `bytes` fail with EFBIG: a way to make
// an append fail without root or test hooks. SIGXFSZ (which would kill the process) is ignored
// meanwhile.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(size_t bytes) {
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    if (getrlimit(RLIMIT_FSIZE, &old_) != 0 || bytes > old_.rlim_max) return;
    struct rlimit lowered = old_;
    lowered.rlim_cur = bytes;
    ok_ = setrlimit(RLIMIT_FSIZE, &lowered) == 0;
  }
  ~FileSizeLimit() {
    if (ok_) setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

  bool ok() const { return ok_; }

 private:
  struct rlimit old_ = {};
  void (*old_handler_)(int) = SIG_DFL;
  bool ok_ = false;
};

class IpamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl =
        absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/mesh-ipam-test-XXXXXX");
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/state/ipam";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::unique_ptr<Ipam> OpenOrDie(const std::string& dir) {
    absl::StatusOr<std::unique_ptr<Ipam>> ipam = Ipam::Open(dir);
    EXPECT_TRUE(ipam.ok()) << ipam.status();
    return ipam.ok() ? *std::move(ipam) : nullptr;
  }
  std::string Read(const std::string& path) {
    absl::StatusOr<std::string> text = ReadFile(path);
    EXPECT_TRUE(text.ok()) << text.status();
    return text.value_or("");
  }
  // Makes writes of `network`'s file fail: rename(2) cannot replace a non-empty directory.
  void BlockFile(const std::string& network) {
    std::string path = dir_ + "/" + network + ".json";
    fs::remove(path);
    fs::create_directories(path + "/blocker");
  }
  void UnblockFile(const std::string& network) { fs::remove_all(dir_ + "/" + network + ".json"); }
  int LineCount(const std::string& path) {
    std::string text = Read(path);
    return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  }
  void WriteFiles(const std::string& dir, const std::string& snapshot, const std::string& journal) {
    fs::create_directories(dir);
    ASSERT_TRUE(WriteFileAtomically(dir + "/front.json", snapshot).ok());
    ASSERT_TRUE(WriteFileAtomically(dir + "/front.journal", journal).ok());
  }

  std::string root_;
  std::string dir_;
};

TEST_F(IpamTest, OpenCreatesThePrivateDirectoryAndStartsEmpty) {
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_ + "/");
  ASSERT_NE(ipam, nullptr);
  EXPECT_EQ(ipam->dir(), dir_);
  struct stat st;
  ASSERT_EQ(stat(dir_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_THAT(ipam->Networks(), IsEmpty());
  // Opening again is fine.
  EXPECT_NE(OpenOrDie(dir_), nullptr);
}

TEST_F(IpamTest, OpenFailsWhenTheDirectoryIsAFile) {
  fs::create_directories(root_ + "/state");
  ASSERT_TRUE(WriteFileAtomically(dir_, "x").ok());
  EXPECT_THAT(Ipam::Open(dir_), StatusIs(absl::StatusCode::kFailedPrecondition, "ipam"));
  EXPECT_THAT(Ipam::Open(dir_ + "/sub"), IsErrorWith(dir_));
}

TEST_F(IpamTest, AddPoolPersistsAndIsIdempotent) {
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  ASSERT_TRUE(ipam->AddPool("front", P("10.88.1.0/24"), std::nullopt).ok());
  EXPECT_TRUE(fs::exists(dir_ + "/front.json"));
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/front.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Same subnet and (default or explicit) gateway: OK.
  EXPECT_TRUE(ipam->AddPool("front", P("10.88.1.0/24"), std::nullopt).ok());
  EXPECT_TRUE(ipam->AddPool("front", P("10.88.1.0/24"), A("10.88.1.1")).ok());
  EXPECT_THAT(ipam->AddPool("front", P("10.88.1.0/24"), A("10.88.1.254")),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       "network \"front\" already has subnet 10.88.1.0/24 with gateway "
                       "10.88.1.1, not 10.88.1.0/24 with gateway 10.88.1.254"));
  EXPECT_THAT(ipam->AddPool("front", P("10.88.2.0/24"), std::nullopt),
              StatusIs(absl::StatusCode::kAlreadyExists, "already has subnet 10.88.1.0/24"));
  absl::StatusOr<PoolSnapshot> snapshot = ipam->Get("front");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(snapshot->subnet, P("10.88.1.0/24"));
  EXPECT_EQ(snapshot->gateway, A("10.88.1.1"));
  EXPECT_THAT(snapshot->leases, IsEmpty());
}

TEST_F(IpamTest, AddPoolRejectsOverlapsAndBadPools) {
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  ASSERT_TRUE(ipam->AddPool("back", P("10.88.0.0/16"), std::nullopt).ok());
  EXPECT_THAT(ipam->AddPool("front", P("10.88.1.0/24"), std::nullopt),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "network \"front\": subnet 10.88.1.0/24 overlaps network \"back\" "
                       "(10.88.0.0/16)"));
  EXPECT_THAT(ipam->AddPool("front", P("10.0.0.0/8"), std::nullopt),
              StatusIs(absl::StatusCode::kInvalidArgument, "overlaps network \"back\""));
  EXPECT_THAT(ipam->AddPool("front", P("10.89.0.0/24"), A("10.89.1.1")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "network \"front\": gateway 10.89.1.1 is outside subnet 10.89.0.0/24"));
  EXPECT_THAT(ipam->AddPool("front", P("10.89.0.0/31"), std::nullopt),
              StatusIs(absl::StatusCode::kInvalidArgument, "is too small"));
  EXPECT_FALSE(fs::exists(dir_ + "/front.json"));
  // Other families never overlap; adjacent subnets do not either.
  EXPECT_TRUE(ipam->AddPool("front", P("fd00:88::/64"), std::nullopt).ok());
  EXPECT_TRUE(ipam->AddPool("side", P("10.89.0.0/24"), std::nullopt).ok());
  EXPECT_THAT(ipam->Networks(), ElementsAre("back", "front", "side"));
}

TEST_F(IpamTest, NetworkNamesAreValidatedBeforeUseAsFileNames) {
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  for (const std::string& bad : {std::string(""), std::string("../etc"), std::string("Front"),
                                 std::string("a/b"), std::string(".")}) {
    EXPECT_THAT(ipam->AddPool(bad, P("10.88.1.0/24"), std::nullopt),
                StatusIs(absl::StatusCode::kInvalidArgument, "network name"))
        << bad;
    EXPECT_THAT(ipam->Allocate(bad, "a", std::nullopt),
                StatusIs(absl::StatusCode::kInvalidArgument, "network name"));
    EXPECT_THAT(ipam->Release(bad, "a"),
                StatusIs(absl::StatusCode::kInvalidArgument, "network name"));
    EXPECT_THAT(ipam->RemovePool(bad),
                StatusIs(absl::StatusCode::kInvalidArgument, "network name"));
    EXPECT_THAT(ipam->Get(bad), StatusIs(absl::StatusCode::kInvalidArgument, "network name"));
    EXPECT_EQ(ipam->Lookup(bad, "a"), std::nullopt);
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 0);
}

TEST_F(IpamTest, AllocateLookupRelease) {
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  ASSERT_TRUE(ipam->AddPool("front", P("10.88.1.0/24"), std::nullopt).ok());
  EXPECT_EQ(*ipam->Allocate("front", "web-1/eth0", std::nullopt), A("10.88.1.2"));
  EXPECT_EQ(*ipam->Allocate("front", "web-1/eth0", std::nullopt), A("10.88.1.2"));
  EXPECT_EQ(*ipam->Allocate("front", "web-1/eth0", A("10.88.1.2")), A("10.88.1.2"));
  EXPECT_EQ(*ipam->Allocate("front", "web-2/eth0", A("10.88.1.7")), A("10.88.1.7"));
  EXPECT_THAT(ipam->Allocate("front", "web-3/eth0", A("10.88.1.7")),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       "network \"front\": address 10.88.1.7 is already leased to \"web-2/eth0\""));
  EXPECT_THAT(ipam->Allocate("front", "web-1/eth0", A("10.88.1.9")),
              StatusIs(absl::StatusCode::kAlreadyExists, "already holds 10.88.1.2"));
  EXPECT_THAT(ipam->Allocate("nope", "web-1/eth0", std::nullopt),
              StatusIs(absl::StatusCode::kNotFound, "network \"nope\" has no address pool"));
  EXPECT_THAT(ipam->Get("nope"), StatusIs(absl::StatusCode::kNotFound, "\"nope\""));
  EXPECT_EQ(ipam->Lookup("front", "web-2/eth0"), A("10.88.1.7"));
  EXPECT_EQ(ipam->Lookup("front", "web-3/eth0"), std::nullopt);
  EXPECT_EQ(ipam->Lookup("nope", "web-2/eth0"), std::nullopt);

  ASSERT_TRUE(ipam->Release("front", "web-2/eth0").ok());
  EXPECT_TRUE(ipam->Release("front", "web-2/eth0").ok());
  EXPECT_TRUE(ipam->Release("nope", "web-2/eth0").ok());
  EXPECT_EQ(ipam->Lookup("front", "web-2/eth0"), std::nullopt);
  EXPECT_THAT(ipam->Get("front")->leases, ElementsAre(Pair(A("10.88.1.2"), "web-1/eth0")));
}

TEST_F(IpamTest, FileFormatIsStableSortedJsonPlusAJournalLinePerChange) {
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  ASSERT_TRUE(ipam->AddPool("front", P("10.88.1.0/24"), std::nullopt).ok());
  const std::string empty_pool = R"({
  "gateway": "10.88.1.1",
  "leases": {},
  "seq": 0,
  "subnet": "10.88.1.0/24",
  "version": 2
}
)";
  EXPECT_EQ(Read(dir_ + "/front.json"), empty_pool);
  EXPECT_EQ(Read(dir_ + "/front.journal"), "");
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/front.journal").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  ASSERT_TRUE(ipam->Allocate("front", "web-1/eth0", std::nullopt).ok());
  ASSERT_TRUE(ipam->Allocate("front", "db/eth0", A("10.88.1.10")).ok());
  // Calls that change nothing write nothing.
  ASSERT_TRUE(ipam->Allocate("front", "db/eth0", std::nullopt).ok());
  ASSERT_TRUE(ipam->Release("front", "nobody/eth0").ok());
  ASSERT_TRUE(ipam->Release("front", "web-1/eth0").ok());
  // The snapshot stays as it was until a compaction.
  EXPECT_EQ(Read(dir_ + "/front.json"), empty_pool);
  EXPECT_EQ(
      Read(dir_ + "/front.journal"),
      R"({"address":"10.88.1.2","last":"10.88.1.2","op":"allocate","owner":"web-1/eth0","seq":1}
{"address":"10.88.1.10","op":"allocate","owner":"db/eth0","seq":2}
{"address":"10.88.1.2","op":"release","owner":"web-1/eth0","seq":3}
)");
}

TEST_F(IpamTest, CompactionRewritesTheSnapshotAndEmptiesTheJournal) {
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  ASSERT_TRUE(ipam->AddPool("front", P("10.88.1.0/24"), std::nullopt).ok());
  ASSERT_TRUE(ipam->Allocate("front", "db/eth0", A("10.88.1.100")).ok());
  // 64 records (at least 64, and at least one per lease) stay in the journal; the 65th change
  // compacts.
  for (int i = 1; i < 64; ++i) {
    if (i % 2 == 1) {
      ASSERT_TRUE(ipam->Allocate("front", "web/eth0", std::nullopt).ok());
    } else {
      ASSERT_TRUE(ipam->Release("front", "web/eth0").ok());
    }
  }
  EXPECT_EQ(LineCount(dir_ + "/front.journal"), 64);
  EXPECT_TRUE(absl::StrContains(Read(dir_ + "/front.json"), "\"seq\": 0,"));
  ASSERT_TRUE(ipam->Release("front", "web/eth0").ok());
  EXPECT_EQ(Read(dir_ + "/front.journal"), "");
  EXPECT_EQ(Read(dir_ + "/front.json"), R"({
  "gateway": "10.88.1.1",
  "last": "10.88.1.33",
  "leases": {
    "10.88.1.100": "db/eth0"
  },
  "seq": 65,
  "subnet": "10.88.1.0/24",
  "version": 2
}
)");
  ASSERT_TRUE(ipam->Allocate("front", "web/eth0", std::nullopt).ok());
  EXPECT_EQ(
      Read(dir_ + "/front.journal"),
      R"({"address":"10.88.1.34","last":"10.88.1.34","op":"allocate","owner":"web/eth0","seq":66}
)");
  ipam.reset();
  std::unique_ptr<Ipam> reopened = OpenOrDie(dir_);
  ASSERT_NE(reopened, nullptr);
  EXPECT_THAT(reopened->Get("front")->leases,
              ElementsAre(Pair(A("10.88.1.34"), "web/eth0"), Pair(A("10.88.1.100"), "db/eth0")));
  EXPECT_EQ(*reopened->Allocate("front", "next/eth0", std::nullopt), A("10.88.1.35"));
}

TEST_F(IpamTest, LeasesSurviveAReopenIdenticallyToTheByte) {
  std::string twin = root_ + "/twin";
  std::map<std::string, std::string> files;
  std::map<std::string, PoolSnapshot> before;
  {
    std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
    ASSERT_TRUE(ipam->AddPool("front", P("10.88.1.0/24"), std::nullopt).ok());
    ASSERT_TRUE(ipam->AddPool("back", P("10.88.2.0/28"), A("10.88.2.14")).ok());
    ASSERT_TRUE(ipam->AddPool("six", P("fd00:88::/64"), std::nullopt).ok());
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(ipam->Allocate("front", absl::StrCat("c", i, "/eth0"), std::nullopt).ok());
      ASSERT_TRUE(ipam->Allocate("six", absl::StrCat("c", i, "/eth0"), std::nullopt).ok());
    }
    for (int i = 0; i < 20; i += 3) {
      ASSERT_TRUE(ipam->Release("front", absl::StrCat("c", i, "/eth0")).ok());
    }
    ASSERT_TRUE(ipam->Allocate("front", "static/eth0", A("10.88.1.200")).ok());
    ASSERT_TRUE(ipam->Allocate("back", "b/eth0", std::nullopt).ok());
    ASSERT_TRUE(ipam->Release("back", "b/eth0").ok());  // leaves a cursor and no lease
    for (const std::string& network : ipam->Networks()) {
      files[network] = Read(dir_ + "/" + network + ".json");
      files[network + ".journal"] = Read(dir_ + "/" + network + ".journal");
      before[network] = *ipam->Get(network);
    }
  }
  fs::copy(dir_, twin);

  std::unique_ptr<Ipam> reopened = OpenOrDie(dir_);
  ASSERT_NE(reopened, nullptr);
  EXPECT_THAT(reopened->Networks(), ElementsAre("back", "front", "six"));
  for (const auto& [network, snapshot] : before) {
    EXPECT_TRUE(SameSnapshot(*reopened->Get(network), snapshot)) << network;
    // Parsing and writing back gives the same bytes.
    uint64_t seq = 99;
    absl::StatusOr<Pool> pool = PoolFromJson(files[network], &seq);
    ASSERT_TRUE(pool.ok()) << pool.status();
    EXPECT_EQ(PoolToJson(*pool, seq), files[network]);
    // Opening reads the files and writes nothing.
    EXPECT_EQ(Read(dir_ + "/" + network + ".journal"), files[network + ".journal"]);
  }
  EXPECT_EQ(reopened->Lookup("front", "c1/eth0"), A("10.88.1.3"));

  // The next allocation after a reopen is the one the cursor promised before it, and the same
  // operations on two copies of the state give byte-identical files.
  std::unique_ptr<Ipam> copy = OpenOrDie(twin);
  ASSERT_NE(copy, nullptr);
  for (Ipam* ipam : {reopened.get(), copy.get()}) {
    EXPECT_EQ(*ipam->Allocate("front", "next/eth0", std::nullopt), A("10.88.1.22"));
    EXPECT_EQ(*ipam->Allocate("back", "next/eth0", std::nullopt), A("10.88.2.2"));
    EXPECT_EQ(*ipam->Allocate("six", "next/eth0", std::nullopt), A("fd00:88::16"));
  }
  for (const auto& [name, bytes] : files) {
    std::string file = absl::EndsWith(name, ".journal") ? name : name + ".json";
    EXPECT_EQ(Read(dir_ + "/" + file), Read(twin + "/" + file)) << file;
  }
}

TEST_F(IpamTest, AFailedAppendChangesNothingInMemoryOrOnDisk) {
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  ASSERT_TRUE(ipam->AddPool("front", P("10.88.1.0/24"), std::nullopt).ok());
  ASSERT_TRUE(ipam->Allocate("front", "a/eth0", std::nullopt).ok());
  const std::string journal = Read(dir_ + "/front.journal");

  {
    // The next append writes 10 bytes, then fails: the short piece must be cut off again.
    FileSizeLimit limit(journal.size() + 10);
    ASSERT_TRUE(limit.ok());
    EXPECT_THAT(ipam->Allocate("front", "b/eth0", std::nullopt),
                IsErrorWith("network \"front\": append to \"" + dir_ + "/front.journal\""));
    EXPECT_EQ(ipam->Lookup("front", "b/eth0"), std::nullopt);
    EXPECT_EQ(Read(dir_ + "/front.journal"), journal);
    EXPECT_THAT(ipam->Allocate("front", "b/eth0", A("10.88.1.50")), IsErrorWith("append"));
    EXPECT_EQ(ipam->Lookup("front", "b/eth0"), std::nullopt);
    EXPECT_THAT(ipam->Release("front", "a/eth0"), IsErrorWith("append"));
    EXPECT_EQ(ipam->Lookup("front", "a/eth0"), A("10.88.1.2"));
    EXPECT_EQ(Read(dir_ + "/front.journal"), journal);
  }
  EXPECT_THAT(ipam->Get("front")->leases, ElementsAre(Pair(A("10.88.1.2"), "a/eth0")));
  // The failed allocation did not move the cursor either, and its seq is used by the next.
  EXPECT_EQ(*ipam->Allocate("front", "b/eth0", std::nullopt), A("10.88.1.3"));
  EXPECT_THAT(ipam->Get("front")->leases,
              ElementsAre(Pair(A("10.88.1.2"), "a/eth0"), Pair(A("10.88.1.3"), "b/eth0")));
  EXPECT_EQ(LineCount(dir_ + "/front.journal"), 2);
  PoolSnapshot live = *ipam->Get("front");
  ipam.reset();
  std::unique_ptr<Ipam> reopened = OpenOrDie(dir_);
  ASSERT_NE(reopened, nullptr);
  EXPECT_TRUE(SameSnapshot(*reopened->Get("front"), live));
}

TEST_F(IpamTest, AFailedAddPoolAddsNothing) {
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  BlockFile("back");
  EXPECT_THAT(ipam->AddPool("back", P("10.88.2.0/24"), std::nullopt),
              IsErrorWith("network \"back\": rename"));
  EXPECT_THAT(ipam->Networks(), IsEmpty());
  EXPECT_FALSE(fs::exists(dir_ + "/back.journal"));
  UnblockFile("back");
  EXPECT_TRUE(ipam->AddPool("back", P("10.88.2.0/24"), std::nullopt).ok());
}

TEST_F(IpamTest, RemovePoolDeletesTheFilesAndIsIdempotent) {
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  ASSERT_TRUE(ipam->AddPool("front", P("10.88.1.0/24"), std::nullopt).ok());
  ASSERT_TRUE(ipam->Allocate("front", "a/eth0", std::nullopt).ok());
  ASSERT_TRUE(ipam->RemovePool("front").ok());
  EXPECT_FALSE(fs::exists(dir_ + "/front.json"));
  EXPECT_FALSE(fs::exists(dir_ + "/front.journal"));
  EXPECT_THAT(ipam->Networks(), IsEmpty());
  EXPECT_TRUE(ipam->RemovePool("front").ok());
  EXPECT_TRUE(ipam->RemovePool("never").ok());
  EXPECT_THAT(ipam->Allocate("front", "a/eth0", std::nullopt),
              StatusIs(absl::StatusCode::kNotFound, "has no address pool"));
  // The subnet is free again, and a new pool starts afresh.
  ASSERT_TRUE(ipam->AddPool("other", P("10.88.1.0/24"), std::nullopt).ok());
  EXPECT_EQ(*ipam->Allocate("other", "a/eth0", std::nullopt), A("10.88.1.2"));
  EXPECT_THAT(OpenOrDie(dir_)->Networks(), ElementsAre("other"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 2);
}

TEST_F(IpamTest, OpenCleansUpAfterACrashAndIgnoresForeignFiles) {
  {
    std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
    ASSERT_TRUE(ipam->AddPool("front", P("10.88.1.0/24"), std::nullopt).ok());
  }
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/.front.json.tmp.AbC123", "{\"half").ok());
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/README", "not a pool").ok());
  // A crash in RemovePool between its two unlinks leaves the journal alone.
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/back.journal", kAllocateLine1).ok());
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/Not-A-Network.journal", "").ok());
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  ASSERT_NE(ipam, nullptr);
  EXPECT_THAT(ipam->Networks(), ElementsAre("front"));
  EXPECT_FALSE(fs::exists(dir_ + "/.front.json.tmp.AbC123"));
  EXPECT_FALSE(fs::exists(dir_ + "/back.journal"));
  EXPECT_TRUE(fs::exists(dir_ + "/front.journal"));
  EXPECT_TRUE(fs::exists(dir_ + "/README"));
  EXPECT_TRUE(fs::exists(dir_ + "/Not-A-Network.journal"));
}

struct CorruptCase {
  std::string file;
  std::string contents;
  absl::StatusCode code;
  std::string message;
};

void PrintTo(const CorruptCase& c, std::ostream* os) { *os << c.file << ": " << c.contents; }

class IpamCorruptFileTest : public IpamTest, public ::testing::WithParamInterface<CorruptCase> {};

TEST_P(IpamCorruptFileTest, IsAnErrorNamingTheFile) {
  fs::create_directories(dir_);
  std::string path = dir_ + "/" + GetParam().file;
  ASSERT_TRUE(WriteFileAtomically(path, GetParam().contents).ok());
  absl::Status status = Ipam::Open(dir_).status();
  EXPECT_THAT(status,
              StatusIs(GetParam().code, absl::StrCat("load ipam pool file \"", path, "\": ")));
  EXPECT_THAT(status, StatusIs(GetParam().code, GetParam().message));
}

constexpr char kGood[] =
    R"({"version":1,"subnet":"10.88.1.0/24","gateway":"10.88.1.1","leases":{}})";

INSTANTIATE_TEST_SUITE_P(
    All, IpamCorruptFileTest,
    ::testing::Values(
        CorruptCase{"front.json", "", absl::StatusCode::kDataLoss, "invalid JSON"},
        CorruptCase{"front.json", "{\"version\":1,", absl::StatusCode::kDataLoss, "invalid JSON"},
        CorruptCase{"front.json", "[]", absl::StatusCode::kDataLoss, "not a JSON object"},
        CorruptCase{"front.json", R"({"version":3,"seq":0,"subnet":"10.88.1.0/24",
                    "gateway":"10.88.1.1","leases":{}})",
                    absl::StatusCode::kDataLoss,
                    "unsupported format version 3, this mesh reads versions 1 to 2"},
        CorruptCase{"front.json", R"({"version":2,"subnet":"10.88.1.0/24","gateway":"10.88.1.1",
                    "leases":{}})",
                    absl::StatusCode::kDataLoss, "\"seq\" must be an integer of 0 or more"},
        CorruptCase{"front.json", R"({"version":2,"seq":-1,"subnet":"10.88.1.0/24",
                    "gateway":"10.88.1.1","leases":{}})",
                    absl::StatusCode::kDataLoss, "\"seq\" must be an integer of 0 or more"},
        CorruptCase{"front.json", R"({"version":1,"seq":0,"subnet":"10.88.1.0/24",
                    "gateway":"10.88.1.1","leases":{}})",
                    absl::StatusCode::kDataLoss, "unknown key \"seq\""},
        CorruptCase{"front.json", R"({"subnet":"10.88.1.0/24","gateway":"10.88.1.1",
                    "leases":{}})",
                    absl::StatusCode::kDataLoss, "unsupported format version (none)"},
        CorruptCase{"front.json", R"({"version":1,"subnet":"10.88.1.5/24",
                    "gateway":"10.88.1.1","leases":{}})",
                    absl::StatusCode::kDataLoss, "\"subnet\": subnet \"10.88.1.5/24\" has host"},
        CorruptCase{"front.json", R"({"version":1,"subnet":"10.88.1.0/24","leases":{}})",
                    absl::StatusCode::kDataLoss, "\"gateway\" must be a string"},
        CorruptCase{"front.json", R"({"version":1,"subnet":"10.88.1.0/24",
                    "gateway":"10.88.1.1","leases":{"10.88.1.1":"a"}})",
                    absl::StatusCode::kDataLoss, "address 10.88.1.1 is the gateway"},
        CorruptCase{"front.json", R"({"version":1,"subnet":"10.88.1.0/24",
                    "gateway":"10.88.1.1","leases":{"10.88.1.2":7}})",
                    absl::StatusCode::kDataLoss, "the owner must be a string"},
        CorruptCase{"front.json", R"({"version":1,"subnet":"fd00::/64",
                    "gateway":"fd00::1","leases":{"fd00::2":"a","fd00:0::2":"b"}})",
                    absl::StatusCode::kDataLoss, "address fd00::2 is leased twice"},
        CorruptCase{"front.json", R"({"version":1,"subnet":"10.88.1.0/24",
                    "gateway":"10.88.1.1","leases":{"10.88.1.2":"a","10.88.1.3":"a"}})",
                    absl::StatusCode::kDataLoss, "the owner also holds 10.88.1.2"},
        CorruptCase{"front.json", R"({"version":1,"subnet":"10.88.1.0/24",
                    "gateway":"10.88.1.1","last":"10.88.9.9","leases":{}})",
                    absl::StatusCode::kDataLoss, "last allocated address"},
        CorruptCase{"front.json", R"({"version":1,"subnet":"10.88.1.0/24","gateway":"10.88.1.1",
                    "leases":{},"extra":true})",
                    absl::StatusCode::kDataLoss, "unknown key \"extra\""},
        CorruptCase{"Front.json", kGood, absl::StatusCode::kInvalidArgument,
                    "network name \"Front\""}));

TEST_F(IpamTest, ReloadAfterManyChangesAcrossCompactionsIsIdentical) {
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  ASSERT_TRUE(ipam->AddPool("front", P("10.88.1.0/24"), std::nullopt).ok());
  ASSERT_TRUE(ipam->AddPool("six", P("fd00:88::/120"), std::nullopt).ok());
  std::mt19937 rng(20240612);
  std::uniform_int_distribution<int> pick(0, 99);
  int compactions = 0;
  int previous_lines = 0;
  for (int step = 1; step <= 4000; ++step) {
    SCOPED_TRACE(absl::StrCat("step ", step));
    // Grow towards about 150 leases and back, so the compaction threshold moves too.
    const std::string network = pick(rng) < 70 ? "front" : "six";
    const int owners = (step / 1000) % 2 == 0 ? 200 : 40;
    const std::string owner = absl::StrCat("c", pick(rng) % owners, "/eth0");
    int op = pick(rng);
    if (op < 50) {
      EXPECT_TRUE(ipam->Allocate(network, owner, std::nullopt).ok() ||
                  network == "six");  // a /120 fills up
    } else if (op < 60) {
      std::string address =
          network == "front" ? absl::StrCat("10.88.1.", 2 + pick(rng) * 2) : "fd00:88::fe";
      ipam->Allocate(network, owner, A(address)).IgnoreError();  // often taken: fine
    } else {
      ASSERT_TRUE(ipam->Release(network, owner).ok());
    }
    int lines = LineCount(dir_ + "/front.journal");
    if (lines < previous_lines) ++compactions;
    previous_lines = lines;

    if (step % 500 == 0) {
      // A copy of the files opened elsewhere holds the same leases and cursor: the next
      // allocation on both gives the same address.
      std::string twin = absl::StrCat(root_, "/twin", step);
      fs::copy(dir_, twin);
      std::unique_ptr<Ipam> copy = OpenOrDie(twin);
      ASSERT_NE(copy, nullptr);
      for (const char* name : {"front", "six"}) {
        ASSERT_TRUE(SameSnapshot(*copy->Get(name), *ipam->Get(name))) << name;
        absl::StatusOr<IpAddress> live = ipam->Allocate(name, "probe/eth0", std::nullopt);
        absl::StatusOr<IpAddress> reloaded = copy->Allocate(name, "probe/eth0", std::nullopt);
        ASSERT_EQ(live.status(), reloaded.status()) << name;
        if (live.ok()) {
          EXPECT_EQ(*live, *reloaded) << name;
        }
        ASSERT_TRUE(ipam->Release(name, "probe/eth0").ok());
      }
    }
  }
  EXPECT_GE(compactions, 10);
  EXPECT_GT(ipam->Get("front")->leases.size(), 10u);
  std::map<std::string, PoolSnapshot> live;
  for (const char* name : {"front", "six"}) live[name] = *ipam->Get(name);
  ipam.reset();
  std::unique_ptr<Ipam> reopened = OpenOrDie(dir_);
  ASSERT_NE(reopened, nullptr);
  for (const auto& [name, snapshot] : live) {
    EXPECT_TRUE(SameSnapshot(*reopened->Get(name), snapshot)) << name;
  }
}

TEST_F(IpamTest, ACrashBetweenSnapshotAndJournalTruncationReloadsCorrectly) {
  // A compaction wrote the snapshot of records 1 to 3 and crashed before emptying the journal;
  // in the second directory, record 4 had been appended after a failed truncation.
  const std::string snapshot = FrontSnapshot(3, "10.88.1.3", R"("10.88.1.3":"b/eth0")");
  const std::string journal = kAllocateLine1 + AllocateLine(2, "10.88.1.3", "b/eth0") +
                              ReleaseLine(3, "10.88.1.2", "a/eth0");
  WriteFiles(dir_, snapshot, journal);
  WriteFiles(root_ + "/more", snapshot, journal + AllocateLine(4, "10.88.1.4", "c/eth0"));

  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  ASSERT_NE(ipam, nullptr);
  EXPECT_THAT(ipam->Get("front")->leases, ElementsAre(Pair(A("10.88.1.3"), "b/eth0")));
  EXPECT_EQ(Read(dir_ + "/front.journal"), journal);  // nothing torn: left as it is
  EXPECT_EQ(*ipam->Allocate("front", "d/eth0", std::nullopt), A("10.88.1.4"));
  EXPECT_EQ(Read(dir_ + "/front.journal"), journal + AllocateLine(4, "10.88.1.4", "d/eth0"));
  ipam.reset();
  EXPECT_THAT(OpenOrDie(dir_)->Get("front")->leases,
              ElementsAre(Pair(A("10.88.1.3"), "b/eth0"), Pair(A("10.88.1.4"), "d/eth0")));

  std::unique_ptr<Ipam> more = OpenOrDie(root_ + "/more");
  ASSERT_NE(more, nullptr);
  EXPECT_THAT(more->Get("front")->leases,
              ElementsAre(Pair(A("10.88.1.3"), "b/eth0"), Pair(A("10.88.1.4"), "c/eth0")));
  EXPECT_EQ(*more->Allocate("front", "d/eth0", std::nullopt), A("10.88.1.5"));
}

TEST_F(IpamTest, ATornLastLineIsIgnoredAndCutOff) {
  const std::string good = kAllocateLine1 + AllocateLine(2, "10.88.1.3", "b/eth0");
  const std::string torn_tails[] = {
      R"({"address":"10.88.1.4","la)",                       // a prefix
      AllocateLine(3, "10.88.1.4", "c/eth0").substr(0, 80),  // all but the newline
      std::string(30, '\0'),                                 // size grew, data never written
      std::string(30, '\0') + "\n",
      "{\"address\":\"10.88.1.4\",\"la\0\0\0\0\0\0\0\0\0\0\0\0\0\0\n",
  };
  int n = 0;
  for (const std::string& tail : torn_tails) {
    SCOPED_TRACE(absl::CEscape(tail));
    std::string dir = absl::StrCat(root_, "/torn", ++n);
    WriteFiles(dir, FrontSnapshot(0, "", ""), good + tail);
    std::unique_ptr<Ipam> ipam = OpenOrDie(dir);
    ASSERT_NE(ipam, nullptr);
    EXPECT_THAT(ipam->Get("front")->leases,
                ElementsAre(Pair(A("10.88.1.2"), "a/eth0"), Pair(A("10.88.1.3"), "b/eth0")));
    EXPECT_EQ(Read(dir + "/front.journal"), good);
    // The torn record's seq is free again, and the next record follows the good ones.
    EXPECT_EQ(*ipam->Allocate("front", "d/eth0", std::nullopt), A("10.88.1.4"));
    EXPECT_EQ(Read(dir + "/front.journal"), good + AllocateLine(3, "10.88.1.4", "d/eth0"));
    ipam.reset();
    EXPECT_EQ(OpenOrDie(dir)->Get("front")->leases.size(), 3u);
  }
}

TEST_F(IpamTest, ABadJournalRecordIsDataLossNamingTheFileAndLine) {
  struct Case {
    std::string journal;
    std::string message;
  };
  const std::string line2 = AllocateLine(2, "10.88.1.3", "b/eth0");
  const Case cases[] = {
      {kAllocateLine1 + "garbage\n" + line2, "line 2: invalid JSON"},
      {kAllocateLine1 + "\n" + line2, "line 2: invalid JSON"},
      {"[]\n" + line2, "line 1: not a JSON object"},
      {kAllocateLine1 + AllocateLine(3, "10.88.1.3", "b/eth0"),
       "line 2: seq 3 does not follow seq 1 of the line before: records are missing"},
      {kAllocateLine1 + AllocateLine(1, "10.88.1.3", "b/eth0"),
       "line 2: seq 1 does not follow seq 1"},
      {line2, "line 1: seq 2 does not follow seq 0 of the snapshot: records are missing"},
      {kAllocateLine1 + ReleaseLine(2, "10.88.1.2", "b/eth0"),
       "line 2: release seq 2: release of 10.88.1.2 by \"b/eth0\", which does not hold it"},
      {AllocateLine(1, "10.88.1.1", "a/eth0"),
       "line 1: allocate seq 1: address 10.88.1.1 is the gateway"},
      {kAllocateLine1 + AllocateLine(2, "10.88.1.2", "b/eth0", false),
       "line 2: allocate seq 2: address 10.88.1.2 is already leased to \"a/eth0\""},
      {kAllocateLine1 + AllocateLine(2, "10.88.1.2", "a/eth0", false),
       "line 2: allocate seq 2: address 10.88.1.2 is already leased to \"a/eth0\""},
      {kAllocateLine1 + AllocateLine(2, "10.88.1.9", "a/eth0", false),
       "line 2: allocate seq 2: \"a/eth0\" already holds 10.88.1.2"},
      {AllocateLine(1, "10.88.1.2", "a b"), "line 1: allocate seq 1: lease owner \"a b\""},
      {R"({"address":"10.88.1.2","last":"10.88.1.255","op":"allocate","owner":"a","seq":1})"
       "\n",
       "line 1: allocate seq 1: last allocated address: address 10.88.1.255 is the broadcast"},
      {R"({"address":"10.88.1.2","last":"10.88.1.2","op":"release","owner":"a","seq":1})"
       "\n",
       "line 1: a release has no \"last\""},
      {R"({"address":"10.88.1.2","op":"free","owner":"a","seq":1})"
       "\n",
       "line 1: \"op\" must be \"allocate\" or \"release\""},
      {R"({"address":"10.88.1.2","op":"release","owner":"a","seq":0})"
       "\n",
       "line 1: \"seq\" must be a positive integer"},
      {R"({"address":"10.88.1.x","op":"release","owner":"a","seq":1})"
       "\n",
       "line 1: \"address\": "},
      {R"({"address":"10.88.1.2","op":"release","owner":7,"seq":1})"
       "\n",
       "line 1: \"owner\" must be a string"},
      {R"({"address":"10.88.1.2","extra":1,"op":"release","owner":"a","seq":1})"
       "\n",
       "line 1: unknown key \"extra\""},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.journal);
    std::string dir = absl::StrCat(root_, "/bad", ++n);
    WriteFiles(dir, FrontSnapshot(0, "", ""), c.journal);
    absl::Status status = Ipam::Open(dir).status();
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kDataLoss,
                                 absl::StrCat("load ipam journal \"", dir, "/front.journal\": ")));
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kDataLoss, c.message));
    EXPECT_EQ(Read(dir + "/front.journal"), c.journal);  // evidence left as it was
  }
}

TEST_F(IpamTest, Version1FilesLoadAndGetAJournal) {
  fs::create_directories(dir_);
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/front.json", R"({
  "gateway": "10.88.1.1",
  "last": "10.88.1.7",
  "leases": {
    "10.88.1.7": "web-1/eth0"
  },
  "subnet": "10.88.1.0/24",
  "version": 1
}
)")
                  .ok());
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  ASSERT_NE(ipam, nullptr);
  EXPECT_THAT(ipam->Get("front")->leases, ElementsAre(Pair(A("10.88.1.7"), "web-1/eth0")));
  EXPECT_EQ(Read(dir_ + "/front.journal"), "");
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/front.journal").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(*ipam->Allocate("front", "web-2/eth0", std::nullopt), A("10.88.1.8"));
  EXPECT_EQ(Read(dir_ + "/front.journal"), AllocateLine(1, "10.88.1.8", "web-2/eth0"));
  ipam.reset();
  EXPECT_EQ(OpenOrDie(dir_)->Lookup("front", "web-2/eth0"), A("10.88.1.8"));
}

TEST_F(IpamTest, AddPoolEmptiesAJournalLeftBehind) {
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  // What a RemovePool that could not delete the journal leaves.
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/front.journal", kAllocateLine1).ok());
  ASSERT_TRUE(ipam->AddPool("front", P("10.88.1.0/24"), std::nullopt).ok());
  EXPECT_EQ(Read(dir_ + "/front.journal"), "");
  EXPECT_THAT(ipam->Get("front")->leases, IsEmpty());
  ipam.reset();
  EXPECT_THAT(OpenOrDie(dir_)->Get("front")->leases, IsEmpty());
}

TEST_F(IpamTest, ConcurrentAllocationsAreUniqueAndDurable) {
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  ASSERT_TRUE(ipam->AddPool("big", P("10.90.0.0/16"), std::nullopt).ok());
  ASSERT_TRUE(ipam->AddPool("small", P("10.91.0.0/24"), std::nullopt).ok());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100;
  std::vector<std::vector<IpAddress>> got(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string owner = absl::StrCat("c", t, "-", i, "/eth0");
        absl::StatusOr<IpAddress> address = ipam->Allocate("big", owner, std::nullopt);
        if (!address.ok()) {
          errors[t] = address.status().ToString();
          return;
        }
        got[t].push_back(*address);
        // Mix in readers and releases, on this pool and another one.
        if (ipam->Lookup("big", owner) != *address) errors[t] = "lookup disagrees";
        if (i % 4 == 3) {
          if (!ipam->Release("big", owner).ok()) errors[t] = "release failed";
          got[t].pop_back();
        }
        if (!ipam->Allocate("small", absl::StrCat("c", t, "/eth0"), std::nullopt).ok()) {
          errors[t] = "small pool failed";
        }
        if (!ipam->Get("big").ok()) errors[t] = "get failed";
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& error : errors) EXPECT_EQ(error, "");

  std::set<IpAddress> unique;
  for (const auto& addresses : got) unique.insert(addresses.begin(), addresses.end());
  constexpr size_t kKept = kThreads * kPerThread * 3 / 4;
  EXPECT_EQ(unique.size(), kKept);
  PoolSnapshot live = *ipam->Get("big");
  EXPECT_EQ(live.leases.size(), kKept);
  for (const auto& [address, owner] : live.leases) EXPECT_TRUE(unique.contains(address)) << owner;
  EXPECT_EQ(ipam->Get("small")->leases.size(), static_cast<size_t>(kThreads));

  std::unique_ptr<Ipam> reopened = OpenOrDie(dir_);
  ASSERT_NE(reopened, nullptr);
  EXPECT_TRUE(SameSnapshot(*reopened->Get("big"), live));
  EXPECT_TRUE(SameSnapshot(*reopened->Get("small"), *ipam->Get("small")));
}

TEST(ChooseSubnetTest, SkipsRoutesAndSubnetsInUse) {
  IpPrefix pool = P("10.88.0.0/16");
  std::vector<IpPrefix> in_use = {P("10.88.3.128/25"), P("10.88.0.0/24")};
  EXPECT_EQ(*Ipam::ChooseSubnet(pool, 24, in_use), P("10.88.1.0/24"));
  in_use.push_back(P("10.88.1.0/24"));
  EXPECT_EQ(*Ipam::ChooseSubnet(pool, 24, in_use), P("10.88.2.0/24"));
  in_use.push_back(P("10.88.2.0/24"));
  EXPECT_EQ(*Ipam::ChooseSubnet(pool, 24, in_use), P("10.88.4.0/24"));
  // Routes elsewhere and of the other family change nothing.
  in_use.push_back(P("192.168.0.0/16"));
  in_use.push_back(P("::/0"));
  EXPECT_EQ(*Ipam::ChooseSubnet(pool, 24, in_use), P("10.88.4.0/24"));
  // A wide route skips its whole block at once.
  EXPECT_EQ(*Ipam::ChooseSubnet(pool, 24, {P("10.88.0.0/17")}), P("10.88.128.0/24"));
  EXPECT_EQ(*Ipam::ChooseSubnet(pool, 16, {}), pool);
  EXPECT_EQ(*Ipam::ChooseSubnet(pool, 26, {P("10.88.0.0/26"), P("10.88.0.64/32")}),
            P("10.88.0.128/26"));
}

TEST(ChooseSubnetTest, ExhaustionSaysHowManyWereTaken) {
  IpPrefix pool = P("10.88.0.0/16");
  EXPECT_THAT(Ipam::ChooseSubnet(pool, 24, {P("10.0.0.0/8")}),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       "default pool 10.88.0.0/16 has no free /24 left (256 in use or "
                       "overlapping routes)"));
  std::vector<IpPrefix> in_use;
  for (int i = 0; i < 256; ++i) {
    if (i != 200) in_use.push_back(*IpPrefix::Containing(IpAddress::V4(0x0a580000 + i * 256), 24));
  }
  EXPECT_EQ(*Ipam::ChooseSubnet(pool, 24, in_use), P("10.88.200.0/24"));
  in_use.push_back(P("10.88.200.77/32"));
  EXPECT_THAT(Ipam::ChooseSubnet(pool, 24, in_use),
              StatusIs(absl::StatusCode::kResourceExhausted, "has no free /24 left (256 in use"));
  // The pool at the very end of the address space: no wrap-around past 255.255.255.255.
  EXPECT_THAT(Ipam::ChooseSubnet(P("255.255.255.0/24"), 25,
                                 {P("255.255.255.0/25"), P("255.255.255.128/25")}),
              StatusIs(absl::StatusCode::kResourceExhausted, "has no free /25 left (2 in use"));
}

TEST(ChooseSubnetTest, RequestedLengthMustFitThePool) {
  EXPECT_THAT(Ipam::ChooseSubnet(P("10.88.0.0/24"), 16, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "cannot choose a /16 subnet from default pool 10.88.0.0/24"));
  EXPECT_THAT(Ipam::ChooseSubnet(P("10.88.0.0/16"), 33, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "the length must be from 16 to 32"));
}

TEST(ChooseSubnetTest, WorksForHugeIpv6Pools) {
  IpPrefix pool = P("fd00::/8");
  EXPECT_EQ(*Ipam::ChooseSubnet(pool, 64, {P("fd00::/64"), P("10.0.0.0/8")}), P("fd00:0:0:1::/64"));
  EXPECT_EQ(*Ipam::ChooseSubnet(pool, 64, {P("fd00::/16")}), P("fd01::/64"));
  EXPECT_THAT(Ipam::ChooseSubnet(pool, 80, {P("fc00::/7")}),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       "default pool fd00::/8 has no free /80 left (2^72 in use"));
}

TEST_F(IpamTest, ChooseFreeSubnetAvoidsExistingPools) {
  std::unique_ptr<Ipam> ipam = OpenOrDie(dir_);
  ASSERT_TRUE(ipam->AddPool("front", P("10.88.0.0/24"), std::nullopt).ok());
  absl::StatusOr<IpPrefix> chosen =
      ipam->ChooseFreeSubnet(P("10.88.0.0/16"), 24, {P("10.88.1.0/24")});
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(*chosen, P("10.88.2.0/24"));
  ASSERT_TRUE(ipam->AddPool("back", *chosen, std::nullopt).ok());
  EXPECT_EQ(*ipam->ChooseFreeSubnet(P("10.88.0.0/16"), 24, {}), P("10.88.1.0/24"));
}

}  // namespace
}  // namespace mesh::netplane::ipam
