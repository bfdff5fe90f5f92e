#include "base/file_lock.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace mesh {
namespace {

class FileLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/mesh-file-lock-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/x.lock";
  }
  void TearDown() override {
    unlink(path_.c_str());
    unlink((dir_ + "/link").c_str());
    rmdir(dir_.c_str());
  }
  std::string dir_;
  std::string path_;
};

TEST_F(FileLockTest, OneHolderAtATimeAndFreeOnceClosed) {
  absl::StatusOr<UniqueFd> first = TryLockFile(path_);
  ASSERT_TRUE(first.ok()) << first.status();
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  absl::StatusOr<UniqueFd> second = TryLockFile(path_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(second.status().message(), "lock file \"" + path_ + "\" is held by another process");

  *first = UniqueFd();
  EXPECT_TRUE(TryLockFile(path_).ok());
}

TEST_F(FileLockTest, RefusesASymlinkAndAMissingDirectory) {
  ASSERT_EQ(symlink("/etc/passwd", (dir_ + "/link").c_str()), 0);
  absl::StatusOr<UniqueFd> link = TryLockFile(dir_ + "/link");
  ASSERT_FALSE(link.ok());
  EXPECT_NE(std::string(link.status().message()).find("open lock file"), std::string::npos);
  EXPECT_EQ(TryLockFile(dir_ + "/no/such/dir.lock").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace mesh
