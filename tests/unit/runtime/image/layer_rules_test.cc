#include "runtime/image/layer_rules.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mesh::runtime::image {
namespace {

using ::testing::HasSubstr;

TEST(NormalizeEntryPathTest, Normalizes) {
  struct Case {
    const char* in;
    const char* out;
  };
  for (const Case& c : std::vector<Case>{{"a", "a"},
                                         {"./a/b/", "a/b"},
                                         {"a//b/./c", "a/b/c"},
                                         {".", ""},
                                         {"./", ""},
                                         {"././a", "a"},
                                         {"a/.../b", "a/.../b"},
                                         {"..a/b..", "..a/b.."}}) {
    absl::StatusOr<std::string> p = NormalizeEntryPath(c.in);
    ASSERT_TRUE(p.ok()) << c.in << ": " << p.status();
    EXPECT_EQ(*p, c.out) << c.in;
  }
}

TEST(NormalizeEntryPathTest, RejectsEscapes) {
  for (const char* bad : {"..", "../x", "a/../../x", "a/..", "./../x", "/etc/passwd", "/", ""}) {
    absl::StatusOr<std::string> p = NormalizeEntryPath(bad);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << "\"" << bad << "\"";
  }
  EXPECT_THAT(NormalizeEntryPath("a/../b").status().message(), HasSubstr("\"..\""));
  EXPECT_THAT(NormalizeEntryPath("/etc").status().message(), HasSubstr("absolute"));
  EXPECT_FALSE(NormalizeEntryPath(std::string(256, 'x')).ok());
  EXPECT_TRUE(NormalizeEntryPath(std::string(255, 'x')).ok());
  std::string long_path;
  for (int i = 0; i < 100; ++i) long_path += std::string(50, 'y') + "/";
  EXPECT_THAT(NormalizeEntryPath(long_path).status().message(), HasSubstr("longer than"));
  EXPECT_FALSE(NormalizeEntryPath(std::string("a\0b", 3)).ok());
}

TEST(ClassifyWhiteoutTest, Classifies) {
  auto classify = [](const char* p) {
    absl::StatusOr<WhiteoutClass> c = ClassifyWhiteout(p);
    EXPECT_TRUE(c.ok()) << p << ": " << c.status();
    return c.ok() ? *c : WhiteoutClass{};
  };
  EXPECT_EQ(classify("etc/passwd").kind, WhiteoutClass::kNone);
  EXPECT_EQ(classify("etc/x.wh.y").kind, WhiteoutClass::kNone);
  WhiteoutClass w = classify("etc/.wh.passwd");
  EXPECT_EQ(w.kind, WhiteoutClass::kWhiteout);
  EXPECT_EQ(w.target, "etc/passwd");
  w = classify(".wh.top");
  EXPECT_EQ(w.kind, WhiteoutClass::kWhiteout);
  EXPECT_EQ(w.target, "top");
  w = classify("var/lib/.wh..wh..opq");
  EXPECT_EQ(w.kind, WhiteoutClass::kOpaque);
  EXPECT_EQ(w.target, "var/lib");
  w = classify(".wh..wh..opq");
  EXPECT_EQ(w.kind, WhiteoutClass::kOpaque);
  EXPECT_EQ(w.target, "");
  EXPECT_EQ(classify(".wh..wh.plnk").kind, WhiteoutClass::kAufsMeta);
  EXPECT_EQ(classify(".wh..wh.plnk/123.456").kind, WhiteoutClass::kAufsMeta);
  EXPECT_EQ(classify("..wh.x").kind, WhiteoutClass::kNone);
}

TEST(ClassifyWhiteoutTest, RejectsAbuse) {
  for (const char* bad : {".wh.", "a/.wh.", ".wh..", "a/.wh..", ".wh...", "a/.wh...",
                          ".wh.dir/file", "a/.wh.b/c", ".wh..wh..opq/x" /* meta: skipped */}) {
    absl::StatusOr<WhiteoutClass> c = ClassifyWhiteout(bad);
    if (std::string(bad) == ".wh..wh..opq/x") {
      ASSERT_TRUE(c.ok());
      EXPECT_EQ(c->kind, WhiteoutClass::kAufsMeta);
      continue;
    }
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(CheckSymlinkTargetTest, ConfinesRelativeTargets) {
  EXPECT_TRUE(CheckSymlinkTarget("bin/sh", "busybox").ok());
  EXPECT_TRUE(CheckSymlinkTarget("bin/sh", "/bin/busybox").ok());  // absolute: fine
  EXPECT_TRUE(CheckSymlinkTarget("usr/lib/x", "../../etc/x").ok());
  EXPECT_TRUE(CheckSymlinkTarget("a/b", "../b/./c/..").ok());
  EXPECT_TRUE(CheckSymlinkTarget("lib", "usr/lib").ok());
  EXPECT_TRUE(CheckSymlinkTarget("a/b/c", "x/../../..").ok());  // ends at the root
  for (auto [link, target] : std::vector<std::pair<const char*, const char*>>{
           {"link", ".."},
           {"link", "../etc"},
           {"a/link", "../../etc"},
           {"a/b/link", "../../../../../../../etc/shadow"},
           {"a/link", "x/../../../y"},
           {"a/link", ""}}) {
    absl::Status s = CheckSymlinkTarget(link, target);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << link << " -> " << target;
  }
}

TEST(ClassifyXattrTest, KeepsDropsRejects) {
  EXPECT_EQ(ClassifyXattr("user.mime_type"), XattrVerdict::kKeep);
  EXPECT_EQ(ClassifyXattr("security.capability"), XattrVerdict::kKeep);
  EXPECT_EQ(ClassifyXattr("security.selinux"), XattrVerdict::kDrop);
  EXPECT_EQ(ClassifyXattr("system.posix_acl_access"), XattrVerdict::kDrop);
  EXPECT_EQ(ClassifyXattr("trusted.foo"), XattrVerdict::kDrop);
  EXPECT_EQ(ClassifyXattr("trusted.overlay.opaque"), XattrVerdict::kReject);
  EXPECT_EQ(ClassifyXattr("trusted.overlay.redirect"), XattrVerdict::kReject);
  EXPECT_EQ(ClassifyXattr("user.overlay.opaque"), XattrVerdict::kReject);
}

TarEntry Entry(const std::string& path, EntryType type, const std::string& link = "") {
  TarEntry e;
  e.path = path;
  e.type = type;
  e.link_target = link;
  e.mode = type == EntryType::kDirectory ? 0755 : 0644;
  return e;
}

TEST(LayerPolicyTest, PlansOrdinaryEntries) {
  LayerPolicy policy({}, true);
  TarEntry root = Entry("./", EntryType::kDirectory);
  absl::StatusOr<PlannedEntry> p = policy.Check(root);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->path, "");
  TarEntry file = Entry("./etc/passwd", EntryType::kRegular);
  file.size = 10;
  file.mode = 04755;
  file.uid = 1000;
  file.gid = 1001;
  file.xattrs = {{"user.a", "1"}, {"security.selinux", "x"}, {"security.capability", "c"}};
  p = policy.Check(file);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->action, EntryAction::kCreate);
  EXPECT_EQ(p->path, "etc/passwd");
  EXPECT_EQ(p->mode, 04755u);
  EXPECT_EQ(p->uid, 1000u);
  EXPECT_EQ(p->gid, 1001u);
  ASSERT_EQ(p->xattrs.size(), 2u);
  EXPECT_EQ(p->xattrs[0].first, "user.a");
  EXPECT_EQ(p->xattrs[1].first, "security.capability");
  p = policy.Check(Entry("etc/passwd-", EntryType::kHardlink, "./etc/passwd"));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->link_target, "etc/passwd");
  p = policy.Check(Entry("bin/sh", EntryType::kSymlink, "/bin/busybox"));
  ASSERT_TRUE(p.ok()) << p.status();
  p = policy.Check(Entry("run/fifo", EntryType::kFifo));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(policy.entries(), 5u);
  EXPECT_EQ(policy.bytes(), 10u);
}

TEST(LayerPolicyTest, PlansWhiteouts) {
  LayerPolicy policy({}, true);
  absl::StatusOr<PlannedEntry> p = policy.Check(Entry("etc/.wh.passwd", EntryType::kRegular));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->action, EntryAction::kWhiteout);
  EXPECT_EQ(p->path, "etc/passwd");
  p = policy.Check(Entry("var/.wh..wh..opq", EntryType::kRegular));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->action, EntryAction::kOpaque);
  EXPECT_EQ(p->path, "var");
  p = policy.Check(Entry(".wh..wh.plnk", EntryType::kDirectory));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->action, EntryAction::kSkip);
  // A whiteout cannot be a hardlink target.
  EXPECT_FALSE(policy.Check(Entry("x", EntryType::kHardlink, "etc/passwd")).ok());
  // A directory may replace a whiteout made earlier in the same layer.
  EXPECT_TRUE(policy.Check(Entry("etc/passwd/inner", EntryType::kRegular)).ok());
}

TEST(LayerPolicyTest, PlainArchivesHaveNoWhiteouts) {
  LayerPolicy policy({}, false);
  absl::StatusOr<PlannedEntry> p = policy.Check(Entry("etc/.wh.passwd", EntryType::kRegular));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->action, EntryAction::kCreate);
  EXPECT_EQ(p->path, "etc/.wh.passwd");
}

struct HostileCase {
  std::string name;
  std::vector<TarEntry> entries;  // the last one must be rejected
  std::string expected;           // substring of the error
};

TEST(LayerPolicyTest, RejectsHostileEntries) {
  std::vector<HostileCase> cases = {
      {"dotdot", {Entry("../evil", EntryType::kRegular)}, "\"..\""},
      {"deep dotdot", {Entry("a/b/../../../evil", EntryType::kRegular)}, "\"..\""},
      {"absolute", {Entry("/etc/passwd", EntryType::kRegular)}, "absolute"},
      {"char device", {Entry("dev/sda", EntryType::kCharDevice)}, "device"},
      {"block device", {Entry("dev/sda", EntryType::kBlockDevice)}, "device"},
      {"socket", {Entry("run/sock", EntryType::kSocket)}, "not a supported"},
      {"escaping symlink", {Entry("a/link", EntryType::kSymlink, "../../etc")}, "climbs"},
      {"file through symlink",
       {Entry("etc", EntryType::kSymlink, "/etc"), Entry("etc/passwd", EntryType::kRegular)},
       "symlink"},
      {"file through relative symlink",
       {Entry("d", EntryType::kSymlink, "."), Entry("d/x", EntryType::kRegular)},
       "symlink"},
      {"file under a file",
       {Entry("f", EntryType::kRegular), Entry("f/x", EntryType::kRegular)},
       "not a directory"},
      {"hardlink out", {Entry("x", EntryType::kHardlink, "../../etc/shadow")}, "\"..\""},
      {"hardlink absolute", {Entry("x", EntryType::kHardlink, "/etc/shadow")}, "absolute"},
      {"hardlink to missing", {Entry("x", EntryType::kHardlink, "nothing")}, "not a regular"},
      {"hardlink to symlink",
       {Entry("s", EntryType::kSymlink, "/etc/shadow"), Entry("x", EntryType::kHardlink, "s")},
       "not a regular"},
      {"hardlink to dir",
       {Entry("d", EntryType::kDirectory), Entry("x", EntryType::kHardlink, "d")},
       "not a regular"},
      {"hardlink to itself", {Entry("x", EntryType::kHardlink, "x")}, "not a regular"},
      {"hardlink to removed",
       {Entry("d/f", EntryType::kRegular), Entry("d", EntryType::kRegular),
        Entry("x", EntryType::kHardlink, "d/f")},
       "not a regular"},
      {"whiteout of dotdot", {Entry("a/.wh..", EntryType::kRegular)}, "whiteout"},
      {"whiteout of dot", {Entry(".wh..", EntryType::kRegular)}, "whiteout"},
      {"empty whiteout", {Entry("a/.wh.", EntryType::kRegular)}, "whiteout"},
      {"whiteout as directory", {Entry("a/.wh.b/c", EntryType::kRegular)}, "whiteout"},
      {"opaque marker in a file",
       {Entry("f", EntryType::kRegular), Entry("f/.wh..wh..opq", EntryType::kRegular)},
       "opaque"},
      {"overlay xattr",
       {[] {
         TarEntry e = Entry("d", EntryType::kDirectory);
         e.xattrs = {{"trusted.overlay.redirect", "/etc"}};
         return e;
       }()},
       "overlayfs"},
      {"negative uid",
       {[] {
         TarEntry e = Entry("f", EntryType::kRegular);
         e.uid = -1;
         return e;
       }()},
       "uid"},
      {"root not a dir", {Entry("./", EntryType::kRegular)}, "root"},
  };
  for (const HostileCase& c : cases) {
    LayerPolicy policy({}, true);
    for (size_t i = 0; i + 1 < c.entries.size(); ++i) {
      ASSERT_TRUE(policy.Check(c.entries[i]).ok()) << c.name;
    }
    absl::Status s = policy.Check(c.entries.back()).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr(c.expected)) << c.name;
  }
}

TEST(LayerPolicyTest, EnforcesCaps) {
  LayerPolicy entries({.max_entries = 3, .max_bytes = 1000}, true);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(entries.Check(Entry("f" + std::to_string(i), EntryType::kRegular)).ok());
  }
  absl::Status s = entries.Check(Entry("f3", EntryType::kRegular)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("more than 3 entries"));

  LayerPolicy bytes({.max_entries = 100, .max_bytes = 1000}, true);
  TarEntry big = Entry("big", EntryType::kRegular);
  big.size = 600;
  ASSERT_TRUE(bytes.Check(big).ok());
  big.path = "big2";
  s = bytes.Check(big).status();
  EXPECT_THAT(s.message(), HasSubstr("more than 1000 bytes"));
  // Data of entries that are not written (whiteouts) counts too: it is still decompressed.
  LayerPolicy whiteouts({.max_entries = 100, .max_bytes = 1000}, true);
  TarEntry wh = Entry("a/.wh.x", EntryType::kRegular);
  wh.size = 1001;
  EXPECT_THAT(whiteouts.Check(wh).status().message(), HasSubstr("more than 1000 bytes"));
}

TEST(LayerPolicyTest, LaterEntriesReplaceEarlierOnes) {
  LayerPolicy policy({}, true);
  ASSERT_TRUE(policy.Check(Entry("x", EntryType::kSymlink, "/etc")).ok());
  // A directory replaces the symlink; entries below it are then fine.
  ASSERT_TRUE(policy.Check(Entry("x", EntryType::kDirectory)).ok());
  EXPECT_TRUE(policy.Check(Entry("x/passwd", EntryType::kRegular)).ok());
}

}  // namespace
}  // namespace mesh::runtime::image
