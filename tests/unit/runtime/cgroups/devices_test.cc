// Device rules: validation, the v1 line syntax, and the v2 BPF program, which a small
// interpreter runs here against the reference decision (DeviceAccessAllowed) without a kernel.
#include "runtime/cgroups/devices.h"

#include <linux/bpf.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/spec/defaults.h"
#include "tests/unit/runtime/cgroups/device_program_eval.h"

namespace mesh::runtime {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

DeviceRule Rule(bool allow, char type, std::optional<int64_t> major, std::optional<int64_t> minor,
                std::string access = "rwm") {
  return DeviceRule{
      .allow = allow, .type = type, .major = major, .minor = minor, .access = std::move(access)};
}
DeviceRule DenyAll() { return DeviceRule{.allow = false, .type = 'a'}; }
DeviceRule AllowAll() { return DeviceRule{.allow = true, .type = 'a'}; }

TEST(DeviceRulesTest, MeshDefaultsAreValidAndAllowExactlyTheDefaultDevices) {
  const std::vector<DeviceRule> rules = DefaultDeviceRules(false);
  ASSERT_TRUE(ValidateDeviceRules(rules).ok()) << ValidateDeviceRules(rules);
  for (auto [major, minor] : std::vector<std::pair<uint32_t, uint32_t>>{
           {1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 2}, {136, 0}, {136, 7}}) {
    for (absl::string_view access : {"r", "w", "m", "rw", "rwm"}) {
      EXPECT_TRUE(DeviceAccessAllowed(rules, 'c', major, minor, access))
          << major << ":" << minor << " " << access;
    }
  }
  EXPECT_FALSE(DeviceAccessAllowed(rules, 'b', 8, 0, "m"));      // /dev/sda
  EXPECT_FALSE(DeviceAccessAllowed(rules, 'c', 1, 1, "r"));      // /dev/mem
  EXPECT_FALSE(DeviceAccessAllowed(rules, 'c', 5, 1, "rw"));     // the host's console
  EXPECT_FALSE(DeviceAccessAllowed(rules, 'c', 4, 0, "w"));      // tty0
  EXPECT_FALSE(DeviceAccessAllowed(rules, 'c', 10, 200, "rw"));  // /dev/net/tun
  EXPECT_FALSE(DeviceAccessAllowed(rules, 'b', 1, 3, "r"));      // a block 1:3 is not null
  // No wildcard mknod (runc's "c *:* m", "b *:* m").
  EXPECT_FALSE(DeviceAccessAllowed(rules, 'c', 99, 99, "m"));
  EXPECT_FALSE(DeviceAccessAllowed(rules, 'b', 99, 99, "m"));

  const std::vector<DeviceRule> privileged = DefaultDeviceRules(true);
  ASSERT_TRUE(ValidateDeviceRules(privileged).ok());
  EXPECT_TRUE(DeviceAccessAllowed(privileged, 'b', 8, 0, "rwm"));
}

TEST(DeviceRulesTest, LinesUseTheV1Syntax) {
  EXPECT_EQ(DeviceRuleLine(DenyAll()), "a");
  EXPECT_EQ(DeviceRuleLine(Rule(true, 'c', 1, 3)), "c 1:3 rwm");
  EXPECT_EQ(DeviceRuleLine(Rule(true, 'c', 136, std::nullopt)), "c 136:* rwm");
  EXPECT_EQ(DeviceRuleLine(Rule(false, 'b', std::nullopt, std::nullopt, "m")), "b *:* m");
}

TEST(DeviceRulesTest, BadRulesAreRefusedWithTheRuleAndTheFix) {
  struct Case {
    std::vector<DeviceRule> rules;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{Rule(true, 'c', 1, 3)}, "devices[0] (allow c): the first rule must be for every device"},
      {{DenyAll(), Rule(true, 'x', 1, 3)}, "devices[1] (allow x): type must be 'a'"},
      {{DenyAll(), Rule(true, 'c', 1, 3, "rx")}, "access \"rx\" has 'x', which is not r, w or m"},
      {{DenyAll(), Rule(true, 'c', 1, 3, "rr")}, "access \"rr\" has 'r' twice"},
      {{DenyAll(), Rule(true, 'c', 1, 3, "")}, "access is empty"},
      {{DenyAll(), Rule(true, 'c', 4096, 0)}, "major 4096 is out of range: 0 to 4095"},
      {{DenyAll(), Rule(true, 'c', -1, 0)}, "major -1 is out of range"},
      {{DenyAll(), Rule(true, 'c', 1, 1 << 20)}, "minor 1048576 is out of range: 0 to 1048575"},
      {{DenyAll(), Rule(false, 'c', 1, 3)},
       "devices[1] (deny c): a deny exception after a default that denies every device"},
      {{DenyAll(), AllowAll()}, "devices[1] (allow a): only the first rule may be"},
      {{DeviceRule{.allow = false, .type = 'a', .major = 1}}, "takes no major or minor"},
      {{DeviceRule{.allow = false, .type = 'a', .access = "rw"}}, "must have access \"rwm\""},
  };
  for (const Case& c : cases) {
    absl::Status s = ValidateDeviceRules(c.rules);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.expected;
    EXPECT_THAT(s.message(), AllOf(HasSubstr("invalid device rules"), HasSubstr(c.expected)));
  }
  // Every bad rule is named, not only the first.
  absl::Status s =
      ValidateDeviceRules({DenyAll(), Rule(true, 'c', 5000, 0), Rule(true, 'b', 1, 1, "q")});
  EXPECT_THAT(s.message(), AllOf(HasSubstr("devices[1]"), HasSubstr("devices[2]")));
  EXPECT_TRUE(ValidateDeviceRules({}).ok());
}

TEST(DeviceProgramTest, DecidesAsTheRulesForEveryCase) {
  const std::vector<std::vector<DeviceRule>> rule_sets = {
      DefaultDeviceRules(false),
      DefaultDeviceRules(true),
      {DenyAll()},
      // Partial access: read-only null, mknod-only of every block device.
      {DenyAll(), Rule(true, 'c', 1, 3, "r"), Rule(true, 'b', std::nullopt, std::nullopt, "m"),
       Rule(true, 'c', std::nullopt, 9, "wm")},
      // An allow default with deny exceptions.
      {AllowAll(), Rule(false, 'b', 8, std::nullopt), Rule(false, 'c', 1, 1, "w"),
       Rule(false, 'c', std::nullopt, std::nullopt, "m")},
  };
  for (size_t set = 0; set < rule_sets.size(); ++set) {
    const std::vector<DeviceRule>& rules = rule_sets[set];
    ASSERT_TRUE(ValidateDeviceRules(rules).ok()) << set << ": " << ValidateDeviceRules(rules);
    const std::vector<bpf_insn> program = DeviceProgram(rules);
    int checked = 0;
    for (char type : {'c', 'b'}) {
      for (uint32_t major : {0u, 1u, 4u, 5u, 8u, 136u, 4095u}) {
        for (uint32_t minor : {0u, 1u, 2u, 3u, 5u, 9u, 42u}) {
          for (absl::string_view access : {"r", "w", "m", "rw", "rm", "wm", "rwm"}) {
            EXPECT_EQ(Verdict(program, type, major, minor, access),
                      DeviceAccessAllowed(rules, type, major, minor, access) ? 1 : 0)
                << "rule set " << set << ": " << type << " " << major << ":" << minor << " "
                << access;
            ++checked;
          }
        }
      }
    }
    EXPECT_EQ(checked, 2 * 7 * 7 * 7);
  }
}

TEST(DeviceProgramTest, DefaultProgramDeniesSdaAndAllowsNull) {
  const std::vector<bpf_insn> program = DeviceProgram(DefaultDeviceRules(false));
  EXPECT_EQ(Verdict(program, 'b', 8, 0, "m"), 0);
  EXPECT_EQ(Verdict(program, 'b', 8, 0, "rw"), 0);
  EXPECT_EQ(Verdict(program, 'c', 1, 3, "m"), 1);
  EXPECT_EQ(Verdict(program, 'c', 1, 3, "rw"), 1);
  EXPECT_EQ(Verdict(program, 'c', 136, 3, "rw"), 1);
  // 6 instructions to unpack the context, at most 5 per rule, 2 to end: far below the
  // verifier's limits.
  EXPECT_LE(program.size(), 6u + 5u * 8u + 2u);
  EXPECT_EQ(program.back().code, BPF_JMP | BPF_EXIT);
}

}  // namespace
}  // namespace mesh::runtime
