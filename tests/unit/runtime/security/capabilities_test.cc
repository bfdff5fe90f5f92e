#include "runtime/security/capabilities.h"

#include <linux/capability.h>

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "base/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/spec/defaults.h"

namespace mesh::runtime::security {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(CapabilityNames, EveryHeaderCapabilityRoundTrips) {
  EXPECT_EQ(LastKnownCapability(), CAP_LAST_CAP);
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    std::string name(CapabilityName(cap));
    ASSERT_FALSE(name.empty()) << cap;
    EXPECT_EQ(name.rfind("CAP_", 0), 0u) << name;
    absl::StatusOr<int> parsed = ParseCapability(name);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, cap) << name;
  }
  EXPECT_EQ(CapabilityName(-1), "");
  EXPECT_EQ(CapabilityName(CAP_LAST_CAP + 1), "");
  EXPECT_EQ(CapabilityName(CAP_NET_RAW), "CAP_NET_RAW");
  EXPECT_EQ(CapabilityName(CAP_CHECKPOINT_RESTORE), "CAP_CHECKPOINT_RESTORE");
}

TEST(CapabilityNames, CaseInsensitiveWithOptionalPrefix) {
  for (const char* name : {"CAP_NET_RAW", "cap_net_raw", "NET_RAW", "net_raw", "Cap_Net_Raw"}) {
    absl::StatusOr<int> cap = ParseCapability(name);
    ASSERT_TRUE(cap.ok()) << name << ": " << cap.status();
    EXPECT_EQ(*cap, CAP_NET_RAW) << name;
  }
}

TEST(CapabilityNames, UnknownNamesAreRefusedByName) {
  for (const char* name :
       {"", "CAP_", "CAP_NET_RAWX", "NET", "ALL", "CAP_ALL", " net_raw", "CAP_CAP_NET_RAW", "41"}) {
    absl::StatusOr<int> cap = ParseCapability(name);
    ASSERT_FALSE(cap.ok()) << name;
    EXPECT_EQ(cap.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(cap.status().message(), HasSubstr(absl::StrCat("\"", name, "\"")));
  }
}

TEST(CapabilityMask, DockerDefaultsAndStrictProfile) {
  absl::StatusOr<CapMask> docker = CapabilityMask(DefaultCapabilities());
  ASSERT_TRUE(docker.ok()) << docker.status();
  EXPECT_EQ(*docker, 0xa80425fbu);
  EXPECT_EQ(FormatCapMask(*docker), "00000000a80425fb");
  EXPECT_EQ(CapabilityNames(*docker).size(), 14u);

  absl::StatusOr<CapMask> strict = CapabilityMask(StrictCapabilities());
  ASSERT_TRUE(strict.ok()) << strict.status();
  EXPECT_EQ(*strict, 0x800405fbu);
  EXPECT_EQ(CapabilityNames(*strict).size(), 11u);
  EXPECT_EQ(*docker & ~*strict, (CapMask{1} << CAP_MKNOD) | (CapMask{1} << CAP_NET_RAW) |
                                    (CapMask{1} << CAP_AUDIT_WRITE));
}

TEST(CapabilityMask, NamesInNumberOrder) {
  EXPECT_THAT(CapabilityNames((CapMask{1} << CAP_SYS_ADMIN) | (CapMask{1} << CAP_CHOWN) |
                              (CapMask{1} << 63)),
              ElementsAre("CAP_CHOWN", "CAP_SYS_ADMIN"));
  EXPECT_THAT(CapabilityNames(0), IsEmpty());
  EXPECT_EQ(CapabilityNames(AllCapabilities()).size(), static_cast<size_t>(CAP_LAST_CAP + 1));
  EXPECT_EQ(FormatCapMask(AllCapabilities()), "000001ffffffffff");
}

TEST(CapabilityMask, ErrorNamesTheSetAndTheCapability) {
  absl::StatusOr<CapMask> mask = CapabilityMask({"CAP_CHOWN", "CAP_BOGUS"}, "effective");
  ASSERT_FALSE(mask.ok());
  EXPECT_EQ(mask.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mask.status().message(), HasSubstr("\"effective\""));
  EXPECT_THAT(mask.status().message(), HasSubstr("\"CAP_BOGUS\""));
}

TEST(CapabilityMasks, RoundTripAndPerSetErrors) {
  CapabilitySets sets = CapabilitiesFrom(DefaultCapabilities());
  sets.ambient = {"net_bind_service"};
  sets.inheritable = {"NET_BIND_SERVICE"};
  absl::StatusOr<CapabilityMasks> masks = ToMasks(sets);
  ASSERT_TRUE(masks.ok()) << masks.status();
  EXPECT_EQ(masks->bounding, 0xa80425fbu);
  EXPECT_EQ(masks->permitted, 0xa80425fbu);
  EXPECT_EQ(masks->effective, 0xa80425fbu);
  EXPECT_EQ(masks->inheritable, CapMask{1} << CAP_NET_BIND_SERVICE);
  EXPECT_EQ(masks->ambient, CapMask{1} << CAP_NET_BIND_SERVICE);
  absl::StatusOr<CapabilityMasks> again = ToMasks(ToSets(*masks));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *masks);
  EXPECT_THAT(ToSets(*masks).ambient, ElementsAre("CAP_NET_BIND_SERVICE"));

  for (auto set :
       {&CapabilitySets::bounding, &CapabilitySets::effective, &CapabilitySets::inheritable,
        &CapabilitySets::permitted, &CapabilitySets::ambient}) {
    CapabilitySets bad;
    (bad.*set).push_back("CAP_NOPE");
    absl::StatusOr<CapabilityMasks> r = ToMasks(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.status().message(), HasSubstr("CAP_NOPE"));
  }
  CapabilitySets bad;
  bad.ambient = {"CAP_NOPE"};
  EXPECT_THAT(ToMasks(bad).status().message(), HasSubstr("\"ambient\""));
}

TEST(CapabilityChanges, DropAndAddOverTheBase) {
  absl::StatusOr<std::vector<std::string>> caps =
      ApplyCapabilityChanges(DefaultCapabilities(), {"net_admin", "CAP_NET_ADMIN"},
                             {"MKNOD", "cap_net_raw", "audit_write"});
  ASSERT_TRUE(caps.ok()) << caps.status();
  absl::StatusOr<CapMask> mask = CapabilityMask(*caps);
  ASSERT_TRUE(mask.ok());
  EXPECT_EQ(*mask, 0x800405fbu | (CapMask{1} << CAP_NET_ADMIN));
  EXPECT_EQ(caps->size(), 12u);  // no duplicates, canonical names
  EXPECT_EQ((*caps)[0], "CAP_CHOWN");
}

TEST(CapabilityChanges, AddedAndDroppedMeansAdded) {
  absl::StatusOr<std::vector<std::string>> caps =
      ApplyCapabilityChanges(DefaultCapabilities(), {"NET_RAW"}, {"NET_RAW"});
  ASSERT_TRUE(caps.ok());
  EXPECT_EQ(*CapabilityMask(*caps), 0xa80425fbu);
}

TEST(CapabilityChanges, DropAllKeepsOnlyTheAdded) {
  absl::StatusOr<std::vector<std::string>> caps =
      ApplyCapabilityChanges(DefaultCapabilities(), {"NET_BIND_SERVICE"}, {"all"});
  ASSERT_TRUE(caps.ok());
  EXPECT_THAT(*caps, ElementsAre("CAP_NET_BIND_SERVICE"));
  caps = ApplyCapabilityChanges(DefaultCapabilities(), {}, {"ALL"});
  ASSERT_TRUE(caps.ok());
  EXPECT_THAT(*caps, IsEmpty());
}

TEST(CapabilityChanges, AddAllGivesEverythingButTheDropped) {
  absl::StatusOr<std::vector<std::string>> caps =
      ApplyCapabilityChanges(StrictCapabilities(), {"ALL"}, {"SYS_ADMIN", "all"});
  ASSERT_TRUE(caps.ok());
  // add ALL wins over drop ALL (Docker's order); the named drop still applies.
  EXPECT_EQ(*CapabilityMask(*caps), AllCapabilities() & ~(CapMask{1} << CAP_SYS_ADMIN));
}

TEST(CapabilityChanges, UnknownNamesAreRefusedWithTheirList) {
  absl::StatusOr<std::vector<std::string>> caps =
      ApplyCapabilityChanges(DefaultCapabilities(), {"NET_RAW", "SYS_WHATEVER"}, {});
  ASSERT_FALSE(caps.ok());
  EXPECT_EQ(caps.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(caps.status().message(), HasSubstr("cap_add"));
  EXPECT_THAT(caps.status().message(), HasSubstr("\"SYS_WHATEVER\""));
  caps = ApplyCapabilityChanges(DefaultCapabilities(), {}, {"bogus"});
  ASSERT_FALSE(caps.ok());
  EXPECT_THAT(caps.status().message(), HasSubstr("cap_drop"));
}

TEST(ContainerCapabilities, DockersShape) {
  absl::StatusOr<CapabilitySets> sets =
      ContainerCapabilities(DefaultCapabilities(), {"NET_ADMIN"}, {"NET_RAW"});
  ASSERT_TRUE(sets.ok()) << sets.status();
  absl::StatusOr<CapabilityMasks> m = ToMasks(*sets);
  ASSERT_TRUE(m.ok());
  const CapMask want = (0xa80425fbu | (CapMask{1} << CAP_NET_ADMIN)) & ~(CapMask{1} << CAP_NET_RAW);
  EXPECT_EQ(m->bounding, want);
  EXPECT_EQ(m->permitted, want);
  EXPECT_EQ(m->effective, want);
  EXPECT_EQ(m->inheritable, 0u);
  EXPECT_EQ(m->ambient, 0u);

  // Added and dropped: added. Nothing in ambient, whatever was named.
  sets = ContainerCapabilities(DefaultCapabilities(), {"net_bind_service", "NET_ADMIN"},
                               {"NET_ADMIN"});
  ASSERT_TRUE(sets.ok());
  m = ToMasks(*sets);
  EXPECT_EQ(m->bounding, 0xa80425fbu | (CapMask{1} << CAP_NET_ADMIN));
  EXPECT_EQ(m->ambient | m->inheritable, 0u);

  // Dropped everything, added one: only that one.
  sets = ContainerCapabilities(DefaultCapabilities(), {"KILL"}, {"ALL"});
  ASSERT_TRUE(sets.ok());
  m = ToMasks(*sets);
  EXPECT_EQ(m->bounding, CapMask{1} << CAP_KILL);
  EXPECT_EQ(m->effective, CapMask{1} << CAP_KILL);
}

TEST(ContainerCapabilities, DropAllIsFiveEmptySets) {
  absl::StatusOr<CapabilitySets> sets = ContainerCapabilities(DefaultCapabilities(), {}, {"all"});
  ASSERT_TRUE(sets.ok()) << sets.status();
  EXPECT_THAT(sets->bounding, IsEmpty());
  EXPECT_THAT(sets->permitted, IsEmpty());
  EXPECT_THAT(sets->effective, IsEmpty());
  EXPECT_THAT(sets->inheritable, IsEmpty());
  EXPECT_THAT(sets->ambient, IsEmpty());
  EXPECT_EQ(ContainerCapabilities(DefaultCapabilities(), {"CAP_FLY"}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

CapMask ParseStatusMask(const std::string& status, const std::string& field) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::ConsumePrefix(&line, field + ":")) {
      uint64_t v = 0;
      EXPECT_TRUE(absl::SimpleHexAtoi(absl::StripAsciiWhitespace(line), &v)) << line;
      return v;
    }
  }
  ADD_FAILURE() << "no " << field << " in /proc/self/status";
  return 0;
}

TEST(RuntimeCapabilities, MatchWhatTheKernelReports) {
  absl::StatusOr<RuntimeCapabilities> rc = ReadRuntimeCapabilities();
  ASSERT_TRUE(rc.ok()) << rc.status();
  EXPECT_GT(rc->last_cap, 30);
  EXPECT_LE(rc->last_cap, CAP_LAST_CAP);
  absl::StatusOr<std::string> status = ReadFile("/proc/self/status");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(rc->bounding, ParseStatusMask(*status, "CapBnd") & AllCapabilities());
  EXPECT_EQ(rc->permitted, ParseStatusMask(*status, "CapPrm"));
  EXPECT_EQ(rc->effective, ParseStatusMask(*status, "CapEff"));
}

}  // namespace
}  // namespace mesh::runtime::security
