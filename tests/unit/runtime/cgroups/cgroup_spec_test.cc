// Where the cgroup code meets the rest of the runtime: the spec's device rules (defaults and
// the OCI JSON shape) and the plan of /sys/fs/cgroup inside a container (rootfs/cgroupfs.h).
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/cgroups/devices.h"
#include "runtime/rootfs/cgroupfs.h"
#include "runtime/spec/defaults.h"
#include "runtime/spec/spec_json.h"

namespace mesh::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

std::vector<std::string> Lines(const std::vector<DeviceRule>& rules) {
  std::vector<std::string> out;
  for (const DeviceRule& r : rules) {
    out.push_back(std::string(r.allow ? "allow " : "deny ") + DeviceRuleLine(r));
  }
  return out;
}

TEST(DeviceDefaultsTest, WithDefaultsFillsTheAllowListUnlessGiven) {
  ContainerSpec spec = WithDefaults(ContainerSpec{.id = "web-1", .image = "busybox"});
  EXPECT_THAT(Lines(spec.resources.devices),
              ElementsAre("deny a", "allow c 1:3 rwm", "allow c 1:5 rwm", "allow c 1:7 rwm",
                          "allow c 1:8 rwm", "allow c 1:9 rwm", "allow c 5:0 rwm",
                          "allow c 5:2 rwm", "allow c 136:* rwm"));
  ContainerSpec privileged = WithDefaults(ContainerSpec{.id = "p", .privileged = true});
  EXPECT_THAT(Lines(privileged.resources.devices), ElementsAre("allow a"));
  // The caller's own rules stay as they are (e.g. adding /dev/fuse).
  ContainerSpec own{.id = "fuse"};
  own.resources.devices = DefaultDeviceRules(false);
  own.resources.devices.push_back(
      DeviceRule{.allow = true, .type = 'c', .major = 10, .minor = 229});
  EXPECT_EQ(WithDefaults(own).resources.devices.size(), 10u);
}

TEST(DeviceDefaultsTest, OciJsonRulesParseWithTheirDefaults) {
  nlohmann::json json = SpecToJson(WithDefaults(ContainerSpec{.id = "web-1", .image = "b"}));
  json["linux"]["resources"]["devices"] = nlohmann::json::parse(R"([
      {"allow": false},
      {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
      {"allow": true, "type": "b", "major": 8}
  ])");
  absl::StatusOr<ContainerSpec> spec = SpecFromJson(json);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(Lines(spec->resources.devices),
              ElementsAre("deny a", "allow c 1:3 rw", "allow b 8:* rwm"));
  // A config without the key (written before devices existed) loads with none.
  json["linux"]["resources"].erase("devices");
  spec = SpecFromJson(json);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->resources.devices, IsEmpty());
  json["linux"]["resources"]["devices"] = nlohmann::json::parse(R"([{"allow": 1, "type": "c"}])");
  EXPECT_EQ(SpecFromJson(json).status().code(), absl::StatusCode::kInvalidArgument);
  json["linux"]["resources"]["devices"] =
      nlohmann::json::parse(R"([{"allow": true, "type": "char"}])");
  EXPECT_THAT(SpecFromJson(json).status().message(), HasSubstr("type \"char\" is not"));
}

TEST(CgroupfsPlanTest, EntriesAreCheckedBeforeAnyMount) {
  using rootfs::CgroupMount;
  EXPECT_TRUE(rootfs::ValidateCgroupMounts({}).ok());
  EXPECT_TRUE(rootfs::ValidateCgroupMounts({{"", "/sys/fs/cgroup/mesh/a"}}).ok());
  EXPECT_TRUE(rootfs::ValidateCgroupMounts(
                  {{"memory", "/sys/fs/cgroup/memory/mesh/a"}, {"cpu,cpuacct", "/x/mesh/a"}})
                  .ok());
  struct Case {
    std::vector<CgroupMount> mounts;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {{{"memory", "relative/dir"}}, "must be an absolute path"},
           {{{"memory", "/sys/fs/cgroup/../../etc"}}, "without \"..\""},
           {{{"", "/a"}, {"memory", "/b"}}, "must be the only one"},
           {{{"../x", "/a"}}, "one path component"},
           {{{"..", "/a"}}, "one path component"},
           {{{"memory", "/a"}, {"memory", "/b"}}, "repeated"},
       }) {
    absl::Status s = rootfs::ValidateCgroupMounts(c.mounts);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.expected;
    EXPECT_THAT(s.message(), HasSubstr(c.expected));
  }
}

TEST(CgroupfsPlanTest, CoMountedHierarchiesGetAControllerSymlinkEach) {
  EXPECT_THAT(rootfs::CgroupSymlinks({{"memory", "/m"}, {"cpu", "/c"}}), IsEmpty());
  EXPECT_THAT(rootfs::CgroupSymlinks({{"memory", "/m"}, {"cpu,cpuacct", "/c"}}),
              ElementsAre(Pair("cpu", "cpu,cpuacct"), Pair("cpuacct", "cpu,cpuacct")));
  // A name that is a hierarchy already gets no link; "name=..." options never do.
  EXPECT_THAT(rootfs::CgroupSymlinks({{"cpu", "/a"}, {"cpu,cpuacct", "/c"}}),
              ElementsAre(Pair("cpuacct", "cpu,cpuacct")));
  EXPECT_THAT(rootfs::CgroupSymlinks({{"net_cls,name=x", "/n"}}),
              ElementsAre(Pair("net_cls", "net_cls,name=x")));
  EXPECT_THAT(rootfs::CgroupSymlinks({{"", "/v2"}}), IsEmpty());
}

}  // namespace
}  // namespace mesh::runtime
