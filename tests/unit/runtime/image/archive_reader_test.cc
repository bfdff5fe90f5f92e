// ReadArchive with an in-memory sink, and the disk writer in its plain mode (no owners, no
// whiteouts), which needs no root.
#include "runtime/image/archive_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "base/atomic_file.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/image/fs.h"
#include "runtime/image/layer_writer.h"
#include "tests/unit/runtime/image/test_archives.h"

namespace mesh::runtime::image {
namespace {

using ::mesh::runtime::image::testing::Gzip;
using ::mesh::runtime::image::testing::TarBuilder;
using ::testing::HasSubstr;

class RecordingSink : public LayerSink {
 public:
  struct Seen {
    PlannedEntry entry;
    std::string data;
  };
  absl::Status Apply(const PlannedEntry& entry, EntryData& data) override {
    Seen seen{entry, ""};
    EntryData::Block block;
    for (;;) {
      absl::StatusOr<bool> more = data.Next(&block);
      if (!more.ok()) return more.status();
      if (!*more) break;
      if (seen.data.size() < static_cast<size_t>(block.offset)) seen.data.resize(block.offset);
      seen.data.append(static_cast<const char*>(block.data), block.size);
    }
    entries.push_back(std::move(seen));
    return absl::OkStatus();
  }
  absl::Status Finish() override {
    finished = true;
    return absl::OkStatus();
  }
  std::vector<Seen> entries;
  bool finished = false;
};

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "mesh-image-unit-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { EXPECT_TRUE(RemoveTree(dir_).ok()); }

  // Writes `content` to a file in the temp dir and opens it for reading.
  UniqueFd FileWith(const std::string& content) {
    std::string path = dir_ + "/archive-" + std::to_string(counter_++);
    EXPECT_TRUE(WriteFileAtomically(path, content).ok());
    return UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  }
  absl::StatusOr<ArchiveDigests> Read(const std::string& content, LayerSink& sink,
                                      ArchiveReadOptions options = {}) {
    UniqueFd fd = FileWith(content);
    return ReadArchive(fd.get(), options, sink);
  }

  std::string dir_;
  int counter_ = 0;
};

using ReadArchiveTest = TempDirTest;

TEST_F(ReadArchiveTest, ReadsEntriesAndDigestsPlainTar) {
  std::string tar = TarBuilder()
                        .Dir("./")
                        .Dir("./etc", 0700)
                        .File("./etc/hosts", "127.0.0.1 localhost\n", 0640)
                        .Symlink("bin/sh", "/bin/busybox")
                        .Hardlink("etc/hosts2", "./etc/hosts")
                        .Fifo("run/fifo")
                        .File("etc/.wh.passwd", "")
                        .File("var/.wh..wh..opq", "")
                        .Build();
  RecordingSink sink;
  absl::StatusOr<ArchiveDigests> d = Read(tar, sink);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(sink.finished);
  EXPECT_EQ(d->diff_id, Sha256Of(tar));
  EXPECT_EQ(d->stored, Sha256Of(tar));
  EXPECT_EQ(d->stored_size, tar.size());
  EXPECT_EQ(d->entries, 8u);
  EXPECT_EQ(d->content_bytes, 20u);
  ASSERT_EQ(sink.entries.size(), 8u);
  EXPECT_EQ(sink.entries[0].entry.path, "");
  EXPECT_EQ(sink.entries[1].entry.path, "etc");
  EXPECT_EQ(sink.entries[1].entry.mode, 0700u);
  EXPECT_EQ(sink.entries[2].entry.path, "etc/hosts");
  EXPECT_EQ(sink.entries[2].data, "127.0.0.1 localhost\n");
  EXPECT_EQ(sink.entries[2].entry.mode, 0640u);
  EXPECT_EQ(sink.entries[2].entry.mtime_sec, 1700000000);
  EXPECT_EQ(sink.entries[3].entry.type, EntryType::kSymlink);
  EXPECT_EQ(sink.entries[3].entry.link_target, "/bin/busybox");
  EXPECT_EQ(sink.entries[4].entry.type, EntryType::kHardlink);
  EXPECT_EQ(sink.entries[4].entry.link_target, "etc/hosts");
  EXPECT_EQ(sink.entries[5].entry.type, EntryType::kFifo);
  EXPECT_EQ(sink.entries[6].entry.action, EntryAction::kWhiteout);
  EXPECT_EQ(sink.entries[6].entry.path, "etc/passwd");
  EXPECT_EQ(sink.entries[7].entry.action, EntryAction::kOpaque);
  EXPECT_EQ(sink.entries[7].entry.path, "var");
}

TEST_F(ReadArchiveTest, GzipDigestsDiffer) {
  std::string tar = TarBuilder().File("a", std::string(100000, 'x')).Build();
  std::string gz = Gzip(tar);
  ASSERT_LT(gz.size(), tar.size());
  RecordingSink sink;
  absl::StatusOr<ArchiveDigests> d = Read(gz, sink);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->diff_id, Sha256Of(tar));
  EXPECT_EQ(d->stored, Sha256Of(gz));
  ASSERT_EQ(sink.entries.size(), 1u);
  EXPECT_EQ(sink.entries[0].data, std::string(100000, 'x'));
}

TEST_F(ReadArchiveTest, TrailingBytesCountInDigests) {
  std::string tar = TarBuilder().File("a", "1").Build() + std::string(4096, '\0');
  RecordingSink sink;
  absl::StatusOr<ArchiveDigests> d = Read(tar, sink);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->diff_id, Sha256Of(tar));
  EXPECT_EQ(d->stored, Sha256Of(tar));
}

TEST_F(ReadArchiveTest, KeepsXattrs) {
  TarBuilder b;
  b.Add({.path = "f", .content = "x", .xattrs = {{"user.k", "v"}, {"security.selinux", "s"}}});
  RecordingSink sink;
  absl::StatusOr<ArchiveDigests> d = Read(b.Build(), sink);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(sink.entries.size(), 1u);
  ASSERT_EQ(sink.entries[0].entry.xattrs.size(), 1u);
  EXPECT_EQ(sink.entries[0].entry.xattrs[0].first, "user.k");
  EXPECT_EQ(sink.entries[0].entry.xattrs[0].second, "v");
}

TEST_F(ReadArchiveTest, KeepsUtf8PaxNamesAsBytes) {
  RecordingSink sink;
  std::string tar = testing::PaxUtf8Tar("caf\xc3\xa9/\xe2\x82\xac", "euro");
  absl::StatusOr<ArchiveDigests> d = Read(tar, sink);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(sink.entries.size(), 1u);
  EXPECT_EQ(sink.entries[0].entry.path, "caf\xc3\xa9/\xe2\x82\xac");
  EXPECT_EQ(sink.entries[0].data, "euro");
  EXPECT_EQ(d->diff_id, Sha256Of(tar));
}

TEST_F(ReadArchiveTest, RejectsHostileArchivesNamingEntryAndRule) {
  struct Case {
    const char* name;
    TarBuilder tar;
    const char* expected;
  };
  std::vector<Case> cases;
  cases.push_back({"dotdot", TarBuilder().File("../../evil", "x"), "\"..\""});
  cases.push_back({"absolute", TarBuilder().File("/etc/evil", "x"), "absolute"});
  cases.push_back({"char device", TarBuilder().CharDevice("dev/mem", 1, 1), "device"});
  cases.push_back({"block device", TarBuilder().BlockDevice("dev/sda", 8, 0), "device"});
  cases.push_back({"overlay whiteout device", TarBuilder().CharDevice("gone", 0, 0), "device"});
  cases.push_back({"escaping symlink", TarBuilder().Symlink("a/l", "../../../etc"), "climbs"});
  cases.push_back({"file through symlink",
                   TarBuilder().Symlink("etc", "/etc").File("etc/evil", "x"), "symlink"});
  cases.push_back({"hardlink out", TarBuilder().Hardlink("x", "../../etc/shadow"), "\"..\""});
  cases.push_back({"hardlink absolute", TarBuilder().Hardlink("x", "/etc/shadow"), "absolute"});
  cases.push_back({"whiteout abuse", TarBuilder().File("a/.wh..", ""), "whiteout"});
  for (Case& c : cases) {
    RecordingSink sink;
    ArchiveReadOptions options;
    options.what = "layer \"L\"";
    absl::Status s = Read(c.tar.Build(), sink, options).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr("layer \"L\"")) << c.name;
    EXPECT_THAT(s.message(), HasSubstr(c.expected)) << c.name << ": " << s;
    EXPECT_FALSE(sink.finished) << c.name;
  }
}

TEST_F(ReadArchiveTest, EnforcesEntryCap) {
  TarBuilder b;
  for (int i = 0; i < 11; ++i) b.File("f" + std::to_string(i), "");
  RecordingSink sink;
  ArchiveReadOptions options;
  options.limits.max_entries = 10;
  absl::Status s = Read(b.Build(), sink, options).status();
  EXPECT_THAT(s.message(), HasSubstr("more than 10 entries"));
  EXPECT_EQ(sink.entries.size(), 10u);
}

TEST_F(ReadArchiveTest, RefusesHugeTrailingData) {
  std::string tar = TarBuilder().File("a", "1").Build();
  RecordingSink sink;
  absl::Status s = Read(Gzip(tar + std::string(17 << 20, '\0')), sink).status();
  EXPECT_THAT(s.message(), HasSubstr("follow the end of the tar archive"));
  EXPECT_TRUE(Read(Gzip(tar + std::string(1 << 20, '\0')), sink).ok());
}

TEST_F(ReadArchiveTest, RejectsGarbageAndTruncation) {
  RecordingSink sink;
  EXPECT_EQ(Read("this is not a tar archive at all", sink).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Read("", sink).status().code(), absl::StatusCode::kInvalidArgument);
  std::string tar = TarBuilder().File("a", std::string(5000, 'x')).Build();
  absl::Status s = Read(tar.substr(0, 1500), sink).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  std::string gz = Gzip(tar);
  s = Read(gz.substr(0, gz.size() / 2), sink).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

using DiskLayerSinkTest = TempDirTest;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(DiskLayerSinkTest, WritesPlainTree) {
  std::string root = dir_ + "/root";
  ASSERT_EQ(::mkdir(root.c_str(), 0755), 0);
  std::string tar = TarBuilder()
                        .File("a/b/c.txt", "hello", 0640)
                        .Symlink("a/link", "b/c.txt")
                        .Hardlink("a/hard", "a/b/c.txt")
                        .Fifo("a/fifo")
                        .File("a/b/c.txt2", "x")
                        .File("a/b/c.txt2", "replaced")  // later entries win
                        .Build();
  DiskSinkOptions plain{
      .overlay_whiteouts = false, .preserve_owner = false, .preserve_xattrs = false};
  absl::StatusOr<std::unique_ptr<DiskLayerSink>> sink = DiskLayerSink::Create(root, plain);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ArchiveReadOptions options;
  options.overlay_whiteouts = false;
  ASSERT_TRUE(Read(tar, **sink, options).ok());
  EXPECT_EQ(ReadAll(root + "/a/b/c.txt"), "hello");
  EXPECT_EQ(ReadAll(root + "/a/b/c.txt2"), "replaced");
  struct stat st;
  ASSERT_EQ(::lstat((root + "/a/b/c.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(st.st_mtime, 1700000000);
  ASSERT_EQ(::lstat((root + "/a/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(::lstat((root + "/a/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

// Defense in depth: even an entry that got past the rules cannot go through a symlink.
TEST_F(DiskLayerSinkTest, KernelRefusesPathsThroughSymlinks) {
  std::string root = dir_ + "/root";
  std::string canary = dir_ + "/canary";
  ASSERT_EQ(::mkdir(root.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(canary.c_str(), 0755), 0);
  ASSERT_EQ(::symlink(canary.c_str(), (root + "/out").c_str()), 0);
  ASSERT_EQ(::symlink("../canary", (root + "/rel").c_str()), 0);
  DiskSinkOptions plain{
      .overlay_whiteouts = false, .preserve_owner = false, .preserve_xattrs = false};
  absl::StatusOr<std::unique_ptr<DiskLayerSink>> sink = DiskLayerSink::Create(root, plain);
  ASSERT_TRUE(sink.ok());
  class Empty : public EntryData {
   public:
    absl::StatusOr<bool> Next(Block*) override { return false; }
  } none;
  for (const char* path : {"out/pwned", "rel/pwned", "out/sub/pwned"}) {
    PlannedEntry e;
    e.path = path;
    e.type = EntryType::kRegular;
    e.mode = 0644;
    absl::Status s = (*sink)->Apply(e, none);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << path << ": " << s;
  }
  PlannedEntry hard;
  hard.path = "h";
  hard.type = EntryType::kHardlink;
  hard.link_target = "out/file";
  ASSERT_TRUE(WriteFileAtomically(canary + "/file", "secret").ok());
  EXPECT_FALSE((*sink)->Apply(hard, none).ok());
  // The directory-times pass must not follow the symlinks either.
  EXPECT_TRUE((*sink)->Finish().ok());
  struct stat st;
  EXPECT_NE(::stat((canary + "/pwned").c_str(), &st), 0);
  EXPECT_NE(::stat((canary + "/sub").c_str(), &st), 0);
  EXPECT_NE(::lstat((root + "/h").c_str(), &st), 0);
}

TEST_F(DiskLayerSinkTest, RemoveTreeNeverFollowsSymlinksAndHandlesDepth) {
  std::string canary = dir_ + "/canary";
  ASSERT_EQ(::mkdir(canary.c_str(), 0755), 0);
  ASSERT_TRUE(WriteFileAtomically(canary + "/keep", "x").ok());
  std::string tree = dir_ + "/tree";
  std::string deep = tree;
  ASSERT_EQ(::mkdir(tree.c_str(), 0755), 0);
  for (int i = 0; i < 300; ++i) {
    deep += "/d";
    ASSERT_EQ(::mkdir(deep.c_str(), 0755), 0);
  }
  ASSERT_EQ(::symlink(canary.c_str(), (deep + "/link").c_str()), 0);
  ASSERT_EQ(::symlink(canary.c_str(), (tree + "/link").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomically(deep + "/file", "y").ok());
  ASSERT_TRUE(RemoveTree(tree).ok());
  struct stat st;
  EXPECT_NE(::lstat(tree.c_str(), &st), 0);
  EXPECT_EQ(::stat((canary + "/keep").c_str(), &st), 0);
  EXPECT_TRUE(RemoveTree(tree).ok());  // already gone: success
}

}  // namespace
}  // namespace mesh::runtime::image
