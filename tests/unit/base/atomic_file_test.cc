#include "base/atomic_file.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace mesh {
namespace {

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mesh-atomic-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const std::string& name : List()) unlink((dir_ + "/" + name).c_str());
    rmdir(dir_.c_str());
  }
  std::vector<std::string> List() {
    std::vector<std::string> names;
    DIR* d = opendir(dir_.c_str());
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
    return names;
  }
  std::string dir_;
};

TEST_F(AtomicFileTest, WritesContentsAndModeLeavingNoTempFile) {
  std::string path = dir_ + "/state.json";
  ASSERT_TRUE(WriteFileAtomically(path, "{\"a\":1}", 0600).ok());
  EXPECT_EQ(*ReadFile(path), "{\"a\":1}");
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(List(), std::vector<std::string>{"state.json"});
}

TEST_F(AtomicFileTest, ReplacesExistingFileWhole) {
  std::string path = dir_ + "/f";
  ASSERT_TRUE(WriteFileAtomically(path, std::string(100000, 'a')).ok());
  ASSERT_TRUE(WriteFileAtomically(path, "short").ok());
  EXPECT_EQ(*ReadFile(path), "short");
  EXPECT_EQ(List().size(), 1u);
}

TEST_F(AtomicFileTest, MissingDirectoryIsNotFoundAndCreatesNothing) {
  absl::Status s = WriteFileAtomically(dir_ + "/nope/f", "x");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(s.message().find("nope"), std::string::npos) << s;
  EXPECT_TRUE(List().empty());
}

TEST_F(AtomicFileTest, FailedRenameRemovesTempFileAndKeepsTarget) {
  // Renaming a file over a non-empty directory fails (EISDIR): the target stays as it was.
  std::string target = dir_ + "/d";
  ASSERT_EQ(mkdir(target.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((target + "/inner").c_str(), 0755), 0);
  absl::Status s = WriteFileAtomically(target, "x");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(List(), std::vector<std::string>{"d"});
  rmdir((target + "/inner").c_str());
  rmdir(target.c_str());
}

TEST_F(AtomicFileTest, ReadMissingFileIsNotFound) {
  EXPECT_EQ(ReadFile(dir_ + "/absent").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace mesh
