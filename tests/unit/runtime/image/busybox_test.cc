#include "runtime/image/busybox.h"

#include <fcntl.h>
#include <unistd.h>

#include <set>

#include "base/atomic_file.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/image/archive_reader.h"
#include "runtime/image/fs.h"

namespace mesh::runtime::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParseAppletListTest, NormalizesSortsAndDedupes) {
  absl::StatusOr<std::vector<std::string>> list =
      ParseAppletList("usr/bin/[\nbin/sh\n\nbin/ash\nbin/sh\nbin/busybox\nsbin/init\n");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_THAT(*list, ElementsAre("bin/ash", "bin/sh", "sbin/init", "usr/bin/["));
  EXPECT_FALSE(ParseAppletList("bin/sh\n../../etc/x\n").ok());
  EXPECT_FALSE(ParseAppletList("/bin/sh\n").ok());
  EXPECT_FALSE(ParseAppletList("\n").ok());
}

TEST(BusyboxConfigTest, IsCanonicalAndParses) {
  Digest d{std::string(64, 'c')};
  std::string a = BusyboxConfig(d, {"linux", "amd64", ""});
  EXPECT_EQ(a, BusyboxConfig(d, {"linux", "amd64", ""}));
  absl::StatusOr<ImageConfig> c = ParseImageConfig(a);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->cmd, ElementsAre("sh"));
  EXPECT_THAT(c->env, ElementsAre(kDefaultPathEnv));
  ASSERT_EQ(c->diff_ids.size(), 1u);
  EXPECT_EQ(c->diff_ids[0], d);
  EXPECT_EQ(c->created, "1970-01-01T00:00:00Z");
}

class BusyboxLayerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "mesh-busybox-unit-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { EXPECT_TRUE(RemoveTree(dir_).ok()); }
  std::string dir_;
};

class Collect : public LayerSink {
 public:
  absl::Status Apply(const PlannedEntry& e, EntryData&) override {
    entries.push_back(e);
    return absl::OkStatus();
  }
  absl::Status Finish() override { return absl::OkStatus(); }
  std::vector<PlannedEntry> entries;
};

TEST_F(BusyboxLayerTest, LayerIsDeterministicAndPassesTheRules) {
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/busybox", "fake busybox binary", 0755).ok());
  UniqueFd bin(::open((dir_ + "/busybox").c_str(), O_RDONLY | O_CLOEXEC));
  std::vector<std::string> applets = {"bin/sh", "usr/bin/[", "usr/local/bin/x"};
  std::string digests[2];
  for (int i = 0; i < 2; ++i) {
    std::string out = dir_ + "/layer" + std::to_string(i);
    UniqueFd fd(::open(out.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    ASSERT_TRUE(WriteBusyboxLayer(bin.get(), applets, fd.get()).ok());
    ASSERT_EQ(::lseek(fd.get(), 0, SEEK_SET), 0);
    Collect sink;
    absl::StatusOr<ArchiveDigests> d = ReadArchive(fd.get(), {}, sink);
    ASSERT_TRUE(d.ok()) << d.status();
    digests[i] = d->diff_id.hex;
    std::set<std::string> paths;
    for (const PlannedEntry& e : sink.entries) {
      paths.insert(e.path);
      EXPECT_EQ(e.uid, 0u);
      EXPECT_EQ(e.mtime_sec, 0);
      if (e.path == "tmp") {
        EXPECT_EQ(e.mode, 01777u);
      }
      if (e.path == "bin/sh" || e.path == "usr/bin/[") {
        EXPECT_EQ(e.type, EntryType::kHardlink);
        EXPECT_EQ(e.link_target, "bin/busybox");
      }
    }
    for (const char* want : {"bin", "bin/busybox", "bin/sh", "etc/passwd", "etc/group", "tmp",
                             "proc", "sys", "dev", "usr/local", "usr/local/bin/x"}) {
      EXPECT_TRUE(paths.contains(want)) << want;
    }
  }
  EXPECT_EQ(digests[0], digests[1]);
}

TEST(CheckStaticElfTest, TellsStaticFromDynamicAndGarbage) {
  for (const char* dynamic : {"/bin/sh", "/usr/bin/env"}) {
    UniqueFd fd(::open(dynamic, O_RDONLY | O_CLOEXEC));
    if (!fd) continue;
    absl::Status s = CheckStaticElf(fd.get(), dynamic);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << dynamic;
    EXPECT_THAT(s.message(), HasSubstr("busybox-static"));
  }
  UniqueFd bb(::open(kDefaultBusyboxPath, O_RDONLY | O_CLOEXEC));
  if (bb) {
    EXPECT_TRUE(CheckStaticElf(bb.get(), kDefaultBusyboxPath).ok());
  }
  std::string tmpl = ::testing::TempDir() + "mesh-elf-XXXXXX";
  UniqueFd junk(::mkostemp(tmpl.data(), O_CLOEXEC));
  ASSERT_TRUE(junk);
  ASSERT_EQ(::write(junk.get(), "#!/bin/sh\n", 10), 10);
  EXPECT_EQ(CheckStaticElf(junk.get(), tmpl).code(), absl::StatusCode::kFailedPrecondition);
  ::unlink(tmpl.c_str());
}

}  // namespace
}  // namespace mesh::runtime::image
