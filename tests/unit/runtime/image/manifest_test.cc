#include "runtime/image/manifest.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mesh::runtime::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr char kManifestType[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kIndexType[] = "application/vnd.oci.image.index.v1+json";
constexpr char kConfigType[] = "application/vnd.oci.image.config.v1+json";
constexpr char kLayerGzip[] = "application/vnd.oci.image.layer.v1.tar+gzip";

json DescriptorJson(const std::string& media_type, const std::string& blob) {
  return {{"mediaType", media_type}, {"digest", Sha256Of(blob).ToString()}, {"size", blob.size()}};
}

std::string ManifestJson(const std::string& config, const std::vector<std::string>& layers) {
  json l = json::array();
  for (const std::string& layer : layers) l.push_back(DescriptorJson(kLayerGzip, layer));
  return json{{"schemaVersion", 2},
              {"mediaType", kManifestType},
              {"config", DescriptorJson(kConfigType, config)},
              {"layers", l}}
      .dump();
}

TEST(ParseJsonTest, RefusesDeepNesting) {
  std::string deep = std::string(100, '[') + std::string(100, ']');
  EXPECT_THAT(ParseJson(deep, "x").status().message(), HasSubstr("nested deeper"));
  std::string ok = std::string(10, '[') + std::string(10, ']');
  EXPECT_TRUE(ParseJson(ok, "x").ok());
  // Brackets inside strings do not count.
  EXPECT_TRUE(ParseJson(absl::StrCat("{\"a\":\"", std::string(100, '['), "\\\"\"}"), "x").ok());
  EXPECT_THAT(ParseJson("{", "thing").status().message(), HasSubstr("thing is malformed"));
}

TEST(OciLayoutTest, ChecksVersion) {
  EXPECT_TRUE(CheckOciLayout(R"({"imageLayoutVersion": "1.0.0"})").ok());
  EXPECT_FALSE(CheckOciLayout(R"({"imageLayoutVersion": "2.0.0"})").ok());
  EXPECT_FALSE(CheckOciLayout(R"({})").ok());
  EXPECT_FALSE(CheckOciLayout(R"([])").ok());
  EXPECT_FALSE(CheckOciLayout("not json").ok());
}

TEST(OciIndexTest, ParsesDescriptors) {
  std::string manifest = ManifestJson("{}", {"layer"});
  json index = {
      {"schemaVersion", 2},
      {"manifests",
       {{{"mediaType", kManifestType},
         {"digest", Sha256Of(manifest).ToString()},
         {"size", manifest.size()},
         {"annotations", {{"org.opencontainers.image.ref.name", "app:1"}}},
         {"platform", {{"os", "linux"}, {"architecture", "arm64"}, {"variant", "v8"}}}}}}};
  absl::StatusOr<OciIndex> parsed = ParseOciIndex(index.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->manifests.size(), 1u);
  const Descriptor& d = parsed->manifests[0];
  EXPECT_EQ(d.media_type, kManifestType);
  EXPECT_EQ(d.digest, Sha256Of(manifest));
  EXPECT_EQ(d.size, static_cast<int64_t>(manifest.size()));
  EXPECT_EQ(d.annotations.at("org.opencontainers.image.ref.name"), "app:1");
  ASSERT_TRUE(d.platform.has_value());
  EXPECT_EQ(d.platform->ToString(), "linux/arm64/v8");
}

TEST(OciIndexTest, RejectsMalformed) {
  for (const char* bad : {
           "",
           "[]",
           "{}",
           R"({"schemaVersion": 1, "manifests": []})",
           R"({"schemaVersion": 2})",
           R"({"schemaVersion": 2, "manifests": {}})",
           R"({"schemaVersion": 2, "manifests": []})",
           R"({"schemaVersion": 2, "manifests": [{"mediaType": "x", "size": 1}]})",
           R"({"schemaVersion": 2, "manifests": [{"digest": "sha256:00", "size": 1}]})",
           R"({"schemaVersion": 2, "manifests": [{"digest": "md5:00", "size": 1}]})",
           R"({"schemaVersion": "2", "manifests": []})",
       }) {
    EXPECT_EQ(ParseOciIndex(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  std::string digest = Sha256Of("x").ToString();
  EXPECT_FALSE(ParseOciIndex(absl::StrCat(R"({"schemaVersion": 2, "manifests": [{"digest": ")",
                                          digest, R"(", "size": -1}]})"))
                   .ok());
  EXPECT_FALSE(ParseOciIndex(absl::StrCat(R"({"schemaVersion": 2, "manifests": [{"digest": ")",
                                          digest, R"(", "size": 1.5}]})"))
                   .ok());
}

TEST(OciManifestTest, Parses) {
  absl::StatusOr<OciManifest> m = ParseOciManifest(ManifestJson("cfg", {"l1", "l2"}));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->config.digest, Sha256Of("cfg"));
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].digest, Sha256Of("l1"));
  EXPECT_EQ(m->layers[1].digest, Sha256Of("l2"));
}

TEST(OciManifestTest, RejectsWrongMediaTypesAndLayerCounts) {
  json m = json::parse(ManifestJson("cfg", {"l1"}));
  m["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json";
  EXPECT_THAT(ParseOciManifest(m.dump()).status().message(), HasSubstr("artifact"));

  m = json::parse(ManifestJson("cfg", {"l1"}));
  m["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+encrypted";
  EXPECT_THAT(ParseOciManifest(m.dump()).status().message(), HasSubstr("media type"));

  m = json::parse(ManifestJson("cfg", {"l1"}));
  m["mediaType"] = kIndexType;
  EXPECT_FALSE(ParseOciManifest(m.dump()).ok());

  EXPECT_THAT(ParseOciManifest(ManifestJson("cfg", {})).status().message(), HasSubstr("no layers"));
  std::vector<std::string> many(kMaxLayers + 1, "l");
  EXPECT_THAT(ParseOciManifest(ManifestJson("cfg", many)).status().message(), HasSubstr("at most"));
  m = json::parse(ManifestJson("cfg", {"l1"}));
  m.erase("config");
  EXPECT_FALSE(ParseOciManifest(m.dump()).ok());
}

TEST(ImageConfigTest, KeepsRuntimeFields) {
  std::string text = R"({
    "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
    "config": {
      "User": "1000:1000", "Env": ["PATH=/bin", "A=b"], "Entrypoint": ["/init"],
      "Cmd": ["--serve", "x y"], "WorkingDir": "/srv",
      "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
      "Labels": {"k": "v"}, "StopSignal": "SIGINT"
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:)" +
                     std::string(64, 'a') + R"(", "sha256:)" + std::string(64, 'b') +
                     R"("]},
    "history": [{"created_by": "x"}]
  })";
  absl::StatusOr<ImageConfig> c = ParseImageConfig(text);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, "amd64");
  EXPECT_EQ(c->os, "linux");
  EXPECT_EQ(c->created, "2024-01-02T03:04:05Z");
  EXPECT_EQ(c->user, "1000:1000");
  EXPECT_THAT(c->env, ElementsAre("PATH=/bin", "A=b"));
  EXPECT_THAT(c->entrypoint, ElementsAre("/init"));
  EXPECT_THAT(c->cmd, ElementsAre("--serve", "x y"));
  EXPECT_EQ(c->working_dir, "/srv");
  EXPECT_THAT(c->exposed_ports, ElementsAre("53/udp", "8080/tcp"));
  EXPECT_EQ(c->labels.at("k"), "v");
  EXPECT_EQ(c->stop_signal, "SIGINT");
  ASSERT_EQ(c->diff_ids.size(), 2u);
  EXPECT_EQ(c->diff_ids[1].hex, std::string(64, 'b'));
}

TEST(ImageConfigTest, NullsAreEmpty) {
  absl::StatusOr<ImageConfig> c = ParseImageConfig(R"({
    "architecture": "amd64", "os": "linux",
    "config": {"Cmd": null, "Entrypoint": null, "Env": null, "User": "", "Labels": null},
    "rootfs": {"type": "layers", "diff_ids": []}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->cmd.empty());
  EXPECT_TRUE(c->entrypoint.empty());
  c = ParseImageConfig(R"({"architecture": "amd64", "os": "linux",
                           "rootfs": {"type": "layers", "diff_ids": []}})");
  ASSERT_TRUE(c.ok()) << c.status();
}

TEST(ImageConfigTest, RejectsMalformed) {
  const std::string rootfs = R"("rootfs": {"type": "layers", "diff_ids": []})";
  for (const std::string& bad : std::vector<std::string>{
           "{",
           "[]",
           R"({"os": "linux", )" + rootfs + "}",
           R"({"architecture": "amd64", "os": "linux"})",
           R"({"architecture": "amd64", "os": "linux", "rootfs": {"type": "x", "diff_ids": []}})",
           R"({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
               "diff_ids": ["sha256:abc"]}})",
           R"({"architecture": "amd64", "os": "linux", "config": {"Cmd": "sh"}, )" + rootfs + "}",
           R"({"architecture": "amd64", "os": "linux", "config": {"Env": [1]}, )" + rootfs + "}",
           R"({"architecture": "amd64", "os": "linux", "config": {"User": 0}, )" + rootfs + "}",
           R"({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["a\u0000b"]}, )" +
               rootfs + "}",
           R"({"architecture": "amd64", "os": "linux", "config": [], )" + rootfs + "}",
       }) {
    EXPECT_EQ(ParseImageConfig(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ImageConfigTest, CheckPlatform) {
  ImageConfig c;
  c.os = "linux";
  c.architecture = "amd64";
  EXPECT_TRUE(CheckPlatform(c, {"linux", "amd64", ""}).ok());
  absl::Status s = CheckPlatform(c, {"linux", "arm64", "v8"});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("linux/amd64"));
  c.os = "windows";
  EXPECT_FALSE(CheckPlatform(c, {"linux", "amd64", ""}).ok());
}

TEST(DockerManifestTest, Parses) {
  absl::StatusOr<std::vector<DockerManifestEntry>> m = ParseDockerManifest(R"([
    {"Config": "abc.json", "RepoTags": ["busybox:latest", "busybox:1"],
     "Layers": ["l1/layer.tar", "./l2/layer.tar"]},
    {"Config": "def.json", "RepoTags": null, "Layers": ["l3/layer.tar"]}])");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[0].config, "abc.json");
  EXPECT_THAT((*m)[0].repo_tags, ElementsAre("busybox:latest", "busybox:1"));
  EXPECT_THAT((*m)[0].layers, ElementsAre("l1/layer.tar", "l2/layer.tar"));
  EXPECT_TRUE((*m)[1].repo_tags.empty());
}

TEST(DockerManifestTest, RejectsMalformedAndEscapingPaths) {
  for (const char* bad : {
           "",
           "{}",
           "[]",
           "[1]",
           R"([{"Layers": ["a"]}])",
           R"([{"Config": "c.json", "Layers": []}])",
           R"([{"Config": "../c.json", "Layers": ["a"]}])",
           R"([{"Config": "/etc/passwd", "Layers": ["a"]}])",
           R"([{"Config": "c.json", "Layers": ["../../etc/shadow"]}])",
           R"([{"Config": "c.json", "Layers": "a"}])",
           R"([{"Config": "c.json", "RepoTags": "x", "Layers": ["a"]}])",
       }) {
    EXPECT_EQ(ParseDockerManifest(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(VerifyBlobTest, ChecksSizeAndDigest) {
  Descriptor d;
  d.digest = Sha256Of("content");
  d.size = 7;
  EXPECT_TRUE(VerifyBlob(d, "content").ok());
  EXPECT_THAT(VerifyBlob(d, "contenT").message(), HasSubstr("does not match its digest"));
  EXPECT_THAT(VerifyBlob(d, "content!").message(), HasSubstr("descriptor says 7"));
}

// An in-memory layout: blobs by digest, fetched with verification like the store does.
class FakeBlobs {
 public:
  Descriptor Put(const std::string& media_type, const std::string& blob,
                 std::optional<Platform> platform = std::nullopt) {
    blobs_[Sha256Of(blob).hex] = blob;
    Descriptor d;
    d.media_type = media_type;
    d.digest = Sha256Of(blob);
    d.size = static_cast<int64_t>(blob.size());
    d.platform = std::move(platform);
    return d;
  }
  void Corrupt(const Descriptor& d) { blobs_[d.digest.hex][0] ^= 1; }
  BlobFetcher Fetcher() {
    return [this](const Descriptor& d) -> absl::StatusOr<std::string> {
      ++fetches_;
      auto it = blobs_.find(d.digest.hex);
      if (it == blobs_.end()) return absl::InvalidArgumentError("blob missing");
      absl::Status s = VerifyBlob(d, it->second);
      if (!s.ok()) return s;
      return it->second;
    };
  }
  int fetches() const { return fetches_; }

 private:
  std::map<std::string, std::string> blobs_;
  int fetches_ = 0;
};

std::string IndexJson(const std::vector<Descriptor>& ds) {
  json m = json::array();
  for (const Descriptor& d : ds) {
    json j = {{"mediaType", d.media_type}, {"digest", d.digest.ToString()}, {"size", d.size}};
    if (d.platform) {
      j["platform"] = {{"os", d.platform->os}, {"architecture", d.platform->architecture}};
    }
    if (!d.annotations.empty()) j["annotations"] = d.annotations;
    m.push_back(j);
  }
  return json{{"schemaVersion", 2}, {"mediaType", kIndexType}, {"manifests", m}}.dump();
}

const Platform kAmd64{"linux", "amd64", ""};
const Platform kArm64{"linux", "arm64", ""};

TEST(ResolveOciImagesTest, PicksHostPlatformFromNestedIndex) {
  FakeBlobs blobs;
  Descriptor arm = blobs.Put(kManifestType, ManifestJson("arm-config", {"arm-layer"}), kArm64);
  Descriptor amd = blobs.Put(kManifestType, ManifestJson("amd-config", {"amd-layer"}), kAmd64);
  Descriptor attestation =
      blobs.Put(kManifestType, ManifestJson("att", {"att"}), Platform{"unknown", "unknown", ""});
  Descriptor nested = blobs.Put(kIndexType, IndexJson({arm, amd, attestation}));
  nested.annotations["io.containerd.image.name"] = "docker.io/library/app:1";
  nested.annotations["org.opencontainers.image.ref.name"] = "1";
  OciIndex top;
  top.manifests = {nested};
  absl::StatusOr<std::vector<ResolvedImage>> images =
      ResolveOciImages(top, blobs.Fetcher(), kAmd64);
  ASSERT_TRUE(images.ok()) << images.status();
  ASSERT_EQ(images->size(), 1u);
  EXPECT_EQ((*images)[0].descriptor.digest, amd.digest);
  EXPECT_EQ((*images)[0].manifest.config.digest, Sha256Of("amd-config"));
  EXPECT_THAT((*images)[0].names, ElementsAre("docker.io/library/app:1"));

  images = ResolveOciImages(top, blobs.Fetcher(), kArm64);
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_EQ((*images)[0].descriptor.digest, arm.digest);

  absl::Status s = ResolveOciImages(top, blobs.Fetcher(), Platform{"linux", "s390x", ""}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("linux/arm64"));
}

TEST(ResolveOciImagesTest, TopLevelManifestsAndDuplicates) {
  FakeBlobs blobs;
  Descriptor a = blobs.Put(kManifestType, ManifestJson("a", {"la"}));
  Descriptor a2 = a;
  a.annotations["org.opencontainers.image.ref.name"] = "a:1";
  a2.annotations["org.opencontainers.image.ref.name"] = "a:2";
  Descriptor b = blobs.Put(kManifestType, ManifestJson("b", {"lb"}), kArm64);  // skipped
  OciIndex top;
  top.manifests = {a, a2, b};
  absl::StatusOr<std::vector<ResolvedImage>> images =
      ResolveOciImages(top, blobs.Fetcher(), kAmd64);
  ASSERT_TRUE(images.ok()) << images.status();
  ASSERT_EQ(images->size(), 1u);
  EXPECT_THAT((*images)[0].names, ElementsAre("a:1", "a:2"));
}

TEST(ResolveOciImagesTest, DigestMismatchFails) {
  FakeBlobs blobs;
  Descriptor m = blobs.Put(kManifestType, ManifestJson("c", {"l"}));
  blobs.Corrupt(m);
  OciIndex top;
  top.manifests = {m};
  absl::Status s = ResolveOciImages(top, blobs.Fetcher(), kAmd64).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("does not match its digest"));
}

TEST(ResolveOciImagesTest, RejectsNonImagesAndDeepNesting) {
  FakeBlobs blobs;
  Descriptor artifact = blobs.Put("application/vnd.cncf.helm.chart.content.v1.tar+gzip", "x");
  OciIndex top;
  top.manifests = {artifact};
  EXPECT_THAT(ResolveOciImages(top, blobs.Fetcher(), kAmd64).status().message(),
              HasSubstr("not an image"));

  Descriptor inner = blobs.Put(kManifestType, ManifestJson("c", {"l"}));
  for (int i = 0; i < 6; ++i) inner = blobs.Put(kIndexType, IndexJson({inner}));
  top.manifests = {inner};
  EXPECT_THAT(ResolveOciImages(top, blobs.Fetcher(), kAmd64).status().message(),
              HasSubstr("nests deeper"));
}

TEST(ResolveOciImagesTest, MissingMediaTypeIsSniffed) {
  FakeBlobs blobs;
  Descriptor m = blobs.Put("", ManifestJson("c", {"l"}));
  OciIndex top;
  top.manifests = {m};
  absl::StatusOr<std::vector<ResolvedImage>> images =
      ResolveOciImages(top, blobs.Fetcher(), kAmd64);
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_EQ(images->size(), 1u);
}

}  // namespace
}  // namespace mesh::runtime::image
