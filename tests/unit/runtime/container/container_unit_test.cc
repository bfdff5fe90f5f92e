// Runtime pieces that need no root: the container log format and rotation, user resolution
// against an image's passwd/group, the spec's JSON round trip, rootfs plan validation, user
// namespace mappings.
#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "base/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/container/image_config.h"
#include "runtime/container/runtime.h"
#include "runtime/container/state.h"
#include "runtime/rootfs/rootfs.h"
#include "runtime/shim/log_writer.h"
#include "runtime/spec/defaults.h"
#include "runtime/spec/spec_json.h"

namespace mesh::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mesh-runtime-unit-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(LogWriterTest, LinesArePartsAndRecordsParseBack) {
  TempDir dir;
  const std::string path = dir.path() + "/container.log";
  auto log = LogWriter::Open(path, 1 << 20, 2);
  ASSERT_TRUE(log.ok()) << log.status();
  const absl::Time t = absl::FromUnixSeconds(1796000000);
  ASSERT_TRUE(log->Write(LogStream::kStdout, "hello\nwor", t).ok());
  ASSERT_TRUE(log->Write(LogStream::kStderr, "oops\n", t).ok());
  ASSERT_TRUE(log->Write(LogStream::kStdout, "ld\nunfinished", t).ok());
  ASSERT_TRUE(log->Flush(t).ok());
  std::vector<std::string> lines = absl::StrSplit(*ReadFile(path), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "2026-11-30T00:53:20.000000000Z stdout F hello");
  EXPECT_EQ(lines[1], "2026-11-30T00:53:20.000000000Z stderr F oops");
  EXPECT_EQ(lines[2], "2026-11-30T00:53:20.000000000Z stdout F world");
  EXPECT_EQ(lines[3], "2026-11-30T00:53:20.000000000Z stdout P unfinished");
  auto record = ParseLogRecord(lines[1]);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->stream, LogStream::kStderr);
  EXPECT_FALSE(record->partial);
  EXPECT_EQ(record->text, "oops");
  EXPECT_EQ(record->time, t);
  EXPECT_FALSE(ParseLogRecord("garbage").ok());
}

TEST(LogWriterTest, LongLinesAreSplitAndFilesRotate) {
  TempDir dir;
  const std::string path = dir.path() + "/container.log";
  auto log = LogWriter::Open(path, 4096, 3);
  ASSERT_TRUE(log.ok());
  const absl::Time t = absl::UnixEpoch();
  ASSERT_TRUE(
      log->Write(LogStream::kStdout, std::string(LogWriter::kMaxLine + 10, 'x') + "\n", t).ok());
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(log->Write(LogStream::kStdout, "line of some length\n", t).ok());
  }
  EXPECT_TRUE(std::filesystem::exists(path + ".1"));
  EXPECT_TRUE(std::filesystem::exists(path + ".2"));
  EXPECT_FALSE(std::filesystem::exists(path + ".3"));  // 3 files in all
  EXPECT_LE(std::filesystem::file_size(path), 4096u);
}

TEST(ResolveUserTest, NamesNumbersGroupsAndErrors) {
  const std::string passwd =
      "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\nbob:x:1000:1000::/:\n";
  const std::string group = "root:x:0:\nwww:x:33:\nstaff:x:50:bob,www\nbob:x:1000:\n";
  auto www = ResolveUser("www", passwd, group);
  ASSERT_TRUE(www.ok()) << www.status();
  EXPECT_EQ(www->uid, 33u);
  EXPECT_EQ(www->gid, 33u);
  EXPECT_THAT(www->additional_gids, ElementsAre(50u));
  auto mixed = ResolveUser("1000:staff", passwd, group);
  ASSERT_TRUE(mixed.ok());
  EXPECT_EQ(mixed->uid, 1000u);
  EXPECT_EQ(mixed->gid, 50u);
  auto unknown_uid = ResolveUser("4242", passwd, group);
  ASSERT_TRUE(unknown_uid.ok());
  EXPECT_EQ(unknown_uid->gid, 0u);
  auto missing = ResolveUser("mallory", passwd, group);
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("mallory"));
  EXPECT_TRUE(absl::IsNotFound(ResolveUser("bob:nogroup", passwd, group).status()));
}

TEST(ImageConfigTest, CommandEnvAndCwdComeFromTheImageUnlessTheSpecSaysOtherwise) {
  image::ImageConfig config;
  config.entrypoint = {"/entry"};
  config.cmd = {"serve", "--port=80"};
  config.env = {"PATH=/image/bin", "MODE=image"};
  config.working_dir = "/srv";
  ContainerSpec spec;
  spec.id = "c";
  spec.process.env = {"MODE=spec"};
  ASSERT_TRUE(ApplyImageConfig(config, {}, spec).ok());
  EXPECT_THAT(spec.process.args, ElementsAre("/entry", "serve", "--port=80"));
  EXPECT_THAT(spec.process.env, ElementsAre("PATH=/image/bin", "MODE=spec"));
  EXPECT_EQ(spec.process.cwd, "/srv");
}

TEST(SpecJsonTest, RoundTripKeepsEveryField) {
  ContainerSpec spec = WithDefaults(ContainerSpec{.id = "web-1", .image = "busybox"});
  spec.process.args = {"sh", "-c", "echo hi"};
  spec.process.env = {"A=1"};
  spec.process.rlimits = {{"RLIMIT_NOFILE", 1024, 2048}};
  spec.process.oom_score_adj = 100;
  spec.user = "nobody";
  spec.mounts = {{"/data", "bind", "/srv/data", {"ro", "rbind"}}};
  spec.namespaces.push_back({NamespaceType::kNetwork, "/run/netns/pod"});
  spec.resources.memory_limit = 64 << 20;
  spec.resources.pids_limit = 100;
  spec.init = true;
  spec.etc_hosts = "127.0.0.1 localhost\n";
  auto back = SpecFromJson(SpecToJson(spec));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(SpecToJson(*back), SpecToJson(spec));
  EXPECT_EQ(back->user, "nobody");
  nlohmann::json broken = SpecToJson(spec);
  broken["mesh"]["seccomp"] = "sometimes";
  EXPECT_TRUE(absl::IsInvalidArgument(SpecFromJson(broken).status()));
  broken = SpecToJson(spec);
  broken["process"]["args"] = 7;
  EXPECT_TRUE(absl::IsInvalidArgument(SpecFromJson(broken).status()));
}

// Unset capabilities (the defaults) and five empty sets (no capability) are different specs
// and stay different through WithDefaults and the config file.
TEST(SpecJsonTest, CapabilitiesUnsetAndEmptyStayApart) {
  ContainerSpec unset{.id = "c", .image = "busybox"};
  nlohmann::json json = SpecToJson(unset);
  EXPECT_FALSE(json["process"].contains("capabilities"));
  absl::StatusOr<ContainerSpec> back = SpecFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->process.capabilities.has_value());
  json["process"]["capabilities"] = nullptr;  // null reads as unset too
  back = SpecFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->process.capabilities.has_value());

  ContainerSpec empty = unset;
  empty.process.capabilities.emplace();
  json = SpecToJson(empty);
  EXPECT_EQ(json["process"]["capabilities"],
            nlohmann::json::parse(R"({"bounding": [], "effective": [], "inheritable": [],
                                      "permitted": [], "ambient": []})"));
  back = SpecFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(back->process.capabilities.has_value());
  EXPECT_TRUE(back->process.capabilities->bounding.empty());
  EXPECT_TRUE(back->process.capabilities->effective.empty());
  EXPECT_TRUE(back->process.capabilities->inheritable.empty());
  EXPECT_TRUE(back->process.capabilities->permitted.empty());
  EXPECT_TRUE(back->process.capabilities->ambient.empty());
  EXPECT_EQ(SpecToJson(*back), json);

  // OCI makes each list optional: a missing one is empty, the object still counts as set.
  json["process"]["capabilities"] = nlohmann::json::parse(R"({"bounding": ["CAP_KILL"]})");
  back = SpecFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(back->process.capabilities.has_value());
  EXPECT_THAT(back->process.capabilities->bounding, ElementsAre("CAP_KILL"));
  EXPECT_TRUE(back->process.capabilities->permitted.empty());
  json["process"]["capabilities"] = nlohmann::json::parse(R"({"bounding": "CAP_KILL"})");
  EXPECT_TRUE(absl::IsInvalidArgument(SpecFromJson(json).status()));
}

TEST(WithDefaultsTest, UnsetCapabilitiesGetDockersAndEmptyStayEmpty) {
  ContainerSpec spec = WithDefaults(ContainerSpec{.id = "c", .image = "busybox"});
  ASSERT_TRUE(spec.process.capabilities.has_value());
  EXPECT_EQ(spec.process.capabilities->bounding, DefaultCapabilities());
  EXPECT_EQ(spec.process.capabilities->permitted, DefaultCapabilities());
  EXPECT_EQ(spec.process.capabilities->effective, DefaultCapabilities());
  EXPECT_TRUE(spec.process.capabilities->inheritable.empty());
  EXPECT_TRUE(spec.process.capabilities->ambient.empty());

  ContainerSpec empty{.id = "c", .image = "busybox"};
  empty.process.capabilities.emplace();
  spec = WithDefaults(empty);
  ASSERT_TRUE(spec.process.capabilities.has_value());
  EXPECT_TRUE(spec.process.capabilities->bounding.empty());
  EXPECT_TRUE(spec.process.capabilities->effective.empty());
  EXPECT_TRUE(spec.process.capabilities->inheritable.empty());
  EXPECT_TRUE(spec.process.capabilities->permitted.empty());
  EXPECT_TRUE(spec.process.capabilities->ambient.empty());

  // A given set is kept as it is, narrower than the defaults or not.
  ContainerSpec one{.id = "c", .image = "busybox"};
  one.process.capabilities = CapabilitiesFrom({"CAP_KILL"});
  EXPECT_THAT(WithDefaults(one).process.capabilities->bounding, ElementsAre("CAP_KILL"));
}

TEST(RootfsPlanTest, BadMountsAreClearErrors) {
  rootfs::RootfsPlan plan;
  plan.lower_dirs = {"/nonexistent-layer"};
  EXPECT_TRUE(rootfs::ValidatePlan(plan).ok());
  auto error_of = [&](Mount m) {
    plan.mounts = {m};
    return std::string(rootfs::ValidatePlan(plan).message());
  };
  EXPECT_THAT(error_of({"relative", "tmpfs", "", {}}), HasSubstr("absolute path"));
  EXPECT_THAT(error_of({"/a/../../etc", "tmpfs", "", {}}), HasSubstr("\"..\""));
  EXPECT_THAT(error_of({"/data", "nfs", "", {}}), HasSubstr("not supported"));
  EXPECT_THAT(error_of({"/data", "bind", "/does/not/exist", {}}), HasSubstr("does not exist"));
  EXPECT_THAT(error_of({"/data", "bind", "/tmp", {"size=1m"}}), HasSubstr("tmpfs only"));
  EXPECT_THAT(error_of({"/data", "tmpfs", "", {"exec-please"}}), HasSubstr("not supported"));
  plan.mounts.clear();
  plan.lower_dirs.clear();
  EXPECT_THAT(std::string(rootfs::ValidatePlan(plan).message()), HasSubstr("no layers"));
}

TEST(IdMappingTest, TextAndLookup) {
  const std::vector<IdMapping> m = {{0, 100000, 65536}, {70000, 300000, 10}};
  EXPECT_EQ(IdMapText(m), "0 100000 65536\n70000 300000 10\n");
  EXPECT_EQ(HostIdOf(m, 0), 100000u);
  EXPECT_EQ(HostIdOf(m, 65535), 165535u);
  EXPECT_EQ(HostIdOf(m, 65536), std::nullopt);
  EXPECT_EQ(HostIdOf(m, 70009), 300009u);
  EXPECT_EQ(HostIdOf(m, 70010), std::nullopt);
  EXPECT_EQ(HostIdOf({{4294967294u, 1, 1}}, 4294967294u), 1u);  // no overflow at the top
  ContainerSpec spec;
  EXPECT_FALSE(HasUserNamespace(spec));
  spec.namespaces.push_back({NamespaceType::kUser, ""});
  EXPECT_TRUE(HasUserNamespace(spec));
}

// Create validates the mappings before it touches anything: each bad spec is InvalidArgument
// naming the container and what to do, and no directory is made (no root needed).
class UserNamespaceValidationTest : public ::testing::Test {
 protected:
  UserNamespaceValidationTest()
      : runtime_(RuntimeOptions{
            .run_root = dir_.path() + "/run",
            .data_root = dir_.path() + "/data",
            .shim_path = "/nonexistent/mesh-shim",
            .layers = [](const std::string&) -> absl::StatusOr<std::vector<std::string>> {
              return std::vector<std::string>{"/nonexistent-layer"};
            }}) {}

  static ContainerSpec Spec() {
    ContainerSpec spec;
    spec.id = "mapped";
    spec.image = "busybox";
    spec.process.args = {"true"};
    spec.namespaces.push_back({NamespaceType::kUser, ""});
    spec.uid_mappings = {{0, 100000, 65536}};
    spec.gid_mappings = {{0, 100000, 65536}};
    return spec;
  }

  // The error Create gives for `spec`, which must be InvalidArgument and leave nothing.
  std::string ErrorOf(const ContainerSpec& spec) {
    auto created = runtime_.Create(spec);
    EXPECT_TRUE(absl::IsInvalidArgument(created.status())) << created.status();
    EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/run"));
    EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/data"));
    const std::string message(created.status().message());
    EXPECT_THAT(message, HasSubstr("container \"mapped\""));
    return message;
  }

  TempDir dir_;
  Runtime runtime_;
};

TEST_F(UserNamespaceValidationTest, MappingsNeedAUserNamespaceAndViceVersa) {
  ContainerSpec spec = Spec();
  spec.namespaces.clear();
  EXPECT_THAT(ErrorOf(spec), HasSubstr("has no user namespace; add a user namespace"));
  spec = Spec();
  spec.uid_mappings.clear();
  EXPECT_THAT(ErrorOf(spec), HasSubstr("needs both uid_mappings and gid_mappings"));
  spec = Spec();
  spec.gid_mappings.clear();
  EXPECT_THAT(ErrorOf(spec), HasSubstr("needs both uid_mappings and gid_mappings"));
  spec = Spec();
  spec.namespaces = {{NamespaceType::kUser, "/proc/1/ns/user"}};
  EXPECT_THAT(ErrorOf(spec), HasSubstr("joining an existing user namespace by path "
                                       "(\"/proc/1/ns/user\") is not supported"));
}

TEST_F(UserNamespaceValidationTest, RangesAreCheckedAsTheKernelWould) {
  ContainerSpec spec = Spec();
  spec.uid_mappings = {{0, 100000, 0}};
  EXPECT_THAT(ErrorOf(spec), HasSubstr("uid_mappings[0] (0 100000 0) has size 0"));
  spec = Spec();
  spec.gid_mappings = {{0, 4294967295u - 65535, 65536}};
  EXPECT_THAT(ErrorOf(spec), HasSubstr("runs past id 4294967294"));
  spec = Spec();
  spec.uid_mappings = {{0, 100000, 65536}, {4294967295u - 1, 1, 2}};
  EXPECT_THAT(ErrorOf(spec), HasSubstr("uid_mappings[1]"));
  spec = Spec();
  spec.uid_mappings = {{0, 100000, 1000}, {999, 200000, 10}};
  EXPECT_THAT(ErrorOf(spec),
              HasSubstr("uid_mappings[1] (999 200000 10) overlaps uid_mappings[0] (0 100000 1000) "
                        "on the container side"));
  spec = Spec();
  spec.gid_mappings = {{0, 100000, 1000}, {5000, 100999, 10}};
  EXPECT_THAT(ErrorOf(spec), HasSubstr("on the host side"));
  // 340 lines are fine for validation (an adjacent range each); 341 are not.
  spec = Spec();
  spec.uid_mappings.clear();
  for (uint32_t i = 0; i < 341; ++i) spec.uid_mappings.push_back({i, 100000 + i, 1});
  EXPECT_THAT(ErrorOf(spec), HasSubstr("has 341 lines, the kernel takes at most 340"));
  // 340 lines with long numbers do not fit in the kernel's one 4096-byte write.
  spec = Spec();
  spec.uid_mappings = {{0, 100000, 1}};
  for (uint32_t i = 1; i < 340; ++i) {
    spec.uid_mappings.push_back({1000000000u + i, 3000000000u + i, 1});
  }
  EXPECT_THAT(ErrorOf(spec), HasSubstr("4096 bytes or more"));
}

TEST_F(UserNamespaceValidationTest, RootAndTheProcessUserMustBeMapped) {
  ContainerSpec spec = Spec();
  spec.uid_mappings = {{1, 100001, 65535}};
  EXPECT_THAT(ErrorOf(spec), HasSubstr("must map container uid 0 and gid 0"));
  spec = Spec();
  spec.gid_mappings = {{1000, 101000, 1}};
  EXPECT_THAT(ErrorOf(spec), HasSubstr("must map container uid 0 and gid 0"));
  spec = Spec();
  spec.process.user.uid = 65536;
  EXPECT_THAT(ErrorOf(spec), HasSubstr("the process's uid 65536 is not in uid_mappings"));
  spec = Spec();
  spec.process.user.additional_gids = {5, 70000};
  EXPECT_THAT(ErrorOf(spec), HasSubstr("the process's gid 70000 is not in gid_mappings"));
}

TEST_F(UserNamespaceValidationTest, AGoodSpecPassesValidation) {
  // Validation passes; what fails next is the missing shim, after the directories were made
  // (and removed again).
  ContainerSpec spec = Spec();
  spec.uid_mappings.push_back({70000, 300000, 10});
  spec.gid_mappings.push_back({70000, 300000, 10});
  spec.process.user = {70001, 70002, {5}};
  auto created = runtime_.Create(spec);
  EXPECT_FALSE(created.ok());
  EXPECT_FALSE(absl::IsInvalidArgument(created.status())) << created.status();
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/data/containers/mapped"));
}

}  // namespace
}  // namespace mesh::runtime
