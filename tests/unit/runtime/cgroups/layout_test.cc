#include "runtime/cgroups/layout.h"

#include "gtest/gtest.h"

namespace mesh::runtime {
namespace {

// As mounted on this project's CI machines: v1 controllers plus an empty cgroup2.
constexpr char kHybrid[] =
    "22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "30 22 0:26 / /sys/fs/cgroup rw,relatime shared:9 - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime shared:10 - cgroup cgroup rw,cpu\n"
    "32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime shared:11 - cgroup cgroup rw,cpuacct\n"
    "33 30 0:29 / /sys/fs/cgroup/memory rw,relatime shared:12 - cgroup cgroup rw,memory\n"
    "34 30 0:30 / /sys/fs/cgroup/pids rw,relatime shared:13 - cgroup cgroup rw,pids\n"
    "35 30 0:31 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "36 30 0:32 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "37 30 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(CgroupLayoutTest, HybridHostHasV1ControllersAndAV2Mount) {
  absl::StatusOr<CgroupLayout> layout = ParseCgroupLayout(kHybrid);
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->v1.at("memory"), "/sys/fs/cgroup/memory");
  EXPECT_EQ(layout->v1.at("pids"), "/sys/fs/cgroup/pids");
  EXPECT_EQ(layout->v1.at("name=systemd"), "/sys/fs/cgroup/systemd");
  EXPECT_FALSE(layout->HasV1("xattr"));  // a mount option, not a controller
  EXPECT_TRUE(layout->HasV1("freezer"));
  EXPECT_EQ(layout->v2, "/sys/fs/cgroup/unified");
}

TEST(CgroupLayoutTest, PureV2AndCoMountedV1) {
  absl::StatusOr<CgroupLayout> v2 = ParseCgroupLayout(
      "25 21 0:22 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n");
  ASSERT_TRUE(v2.ok());
  EXPECT_TRUE(v2->v1.empty());
  EXPECT_EQ(v2->v2, "/sys/fs/cgroup");

  absl::StatusOr<CgroupLayout> co = ParseCgroupLayout(
      "31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n");
  ASSERT_TRUE(co.ok());
  EXPECT_EQ(co->v1.at("cpu"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(co->v1.at("cpuacct"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_FALSE(co->v2.has_value());
}

TEST(CgroupLayoutTest, UnescapesMountPoints) {
  absl::StatusOr<CgroupLayout> layout =
      ParseCgroupLayout("1 0 0:1 / /my\\040cgroups rw - cgroup2 none rw\n");
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(layout->v2, "/my cgroups");
}

TEST(CgroupLayoutTest, MalformedLineIsAnErrorNamingIt) {
  absl::StatusOr<CgroupLayout> layout = ParseCgroupLayout("1 0 0:1 / /x rw cgroup2\n");
  EXPECT_EQ(layout.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(layout.status().message().find("line 1"), std::string::npos);
}

}  // namespace
}  // namespace mesh::runtime
