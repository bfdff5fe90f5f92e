// The image store against the real kernel, as root in the sandbox: OCI layouts and docker save
// archives built by the test itself, overlayfs mounted over the imported layers, hostile
// archives, the built-in busybox image, removal and reopening.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "base/child_process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/image/fs.h"
#include "runtime/image/image_store.h"
#include "tests/support/sandbox.h"
#include "tests/unit/runtime/image/test_archives.h"

namespace mesh::runtime::image {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::mesh::runtime::image::testing::Gzip;
using ::mesh::runtime::image::testing::TarBuilder;
using ::mesh::testing::Sandbox;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << content;
}

// Every path below `root` with its type, mode, owner and size (links: their target), sorted:
// what "nothing changed" is compared on.
std::string Listing(const std::string& root) {
  std::vector<std::string> lines;
  if (!fs::exists(root)) return "<missing>";
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st;
    std::string path = it->path().string();
    if (::lstat(path.c_str(), &st) != 0) continue;
    std::string line =
        absl::StrCat(path.substr(root.size()), " mode=", st.st_mode, " uid=", st.st_uid,
                     " size=", S_ISDIR(st.st_mode) ? 0 : st.st_size);
    if (S_ISLNK(st.st_mode)) line += " -> " + fs::read_symlink(it->path()).string();
    if (S_ISREG(st.st_mode)) line += " " + Sha256Of(ReadAll(path)).hex;
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

// Builds an OCI image layout in a directory.
class OciLayout {
 public:
  explicit OciLayout(std::string dir) : dir_(std::move(dir)) {
    fs::create_directories(dir_ + "/blobs/sha256");
    WriteAll(dir_ + "/oci-layout", R"({"imageLayoutVersion": "1.0.0"})");
  }
  json Blob(const std::string& media_type, const std::string& content) {
    Digest d = Sha256Of(content);
    WriteAll(dir_ + "/blobs/sha256/" + d.hex, content);
    return {{"mediaType", media_type}, {"digest", d.ToString()}, {"size", content.size()}};
  }
  // Layers are uncompressed tars; `gzip[i]` stores layer i gzip'd.
  json Image(const std::vector<std::string>& layers, const json& run_config,
             const std::vector<bool>& gzip = {}) {
    json diff_ids = json::array();
    json layer_descriptors = json::array();
    for (size_t i = 0; i < layers.size(); ++i) {
      diff_ids.push_back(Sha256Of(layers[i]).ToString());
      bool gz = i < gzip.size() && gzip[i];
      layer_descriptors.push_back(
          gz ? Blob("application/vnd.oci.image.layer.v1.tar+gzip", Gzip(layers[i]))
             : Blob("application/vnd.oci.image.layer.v1.tar", layers[i]));
    }
    json config = {{"architecture", HostPlatform().architecture},
                   {"os", "linux"},
                   {"created", "2024-05-06T07:08:09Z"},
                   {"config", run_config},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
    last_config_id_ = Sha256Of(config.dump()).ToString();
    json manifest = {{"schemaVersion", 2},
                     {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                     {"config", Blob("application/vnd.oci.image.config.v1+json", config.dump())},
                     {"layers", layer_descriptors}};
    return Blob("application/vnd.oci.image.manifest.v1+json", manifest.dump());
  }
  void Index(std::vector<json> manifests) {
    json index = {{"schemaVersion", 2},
                  {"mediaType", "application/vnd.oci.image.index.v1+json"},
                  {"manifests", manifests}};
    WriteAll(dir_ + "/index.json", index.dump());
  }
  const std::string& dir() const { return dir_; }
  const std::string& last_config_id() const { return last_config_id_; }

 private:
  std::string dir_;
  std::string last_config_id_;
};

json Named(json descriptor, const std::string& name) {
  descriptor["annotations"] = {{"org.opencontainers.image.ref.name", name}};
  return descriptor;
}

// A tar of a directory tree (directories, files, symlinks), paths relative to it.
std::string TarOfDir(const std::string& dir) {
  std::vector<fs::path> paths;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    paths.push_back(it->path());
  }
  std::sort(paths.begin(), paths.end());
  TarBuilder b;
  for (const fs::path& p : paths) {
    std::string rel = p.lexically_relative(dir).string();
    if (fs::is_symlink(p)) {
      b.Symlink(rel, fs::read_symlink(p).string());
    } else if (fs::is_directory(p)) {
      b.Dir(rel);
    } else {
      b.File(rel, ReadAll(p.string()));
    }
  }
  return b.Build();
}

// A read-only overlayfs over layer directories (top first), unmounted on destruction.
class Overlay {
 public:
  Overlay(const std::vector<std::string>& lowers, std::string target) : target_(std::move(target)) {
    fs::create_directories(target_);
    std::string options = "lowerdir=";
    for (size_t i = 0; i < lowers.size(); ++i) options += (i ? ":" : "") + lowers[i];
    mounted_ = ::mount("overlay", target_.c_str(), "overlay", MS_RDONLY, options.c_str()) == 0;
    if (!mounted_) error_ = errno;
  }
  ~Overlay() {
    if (mounted_) ::umount2(target_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  int error() const { return error_; }

 private:
  std::string target_;
  bool mounted_ = false;
  int error_ = 0;
};

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MESH_REQUIRE_ROOT();
    ASSERT_TRUE(mesh::testing::InSandbox()) << "run through the sandbox launcher";
    base_ = absl::StrCat(Sandbox::kScratchDir, "/image-test");
    fs::remove_all(base_);
    fs::create_directories(base_);
    root_ = base_ + "/store";
    canary_ = base_ + "/canary";
    WriteAll(canary_ + "/keep", "original");
    OpenStore();
  }
  void TearDown() override {
    store_.reset();
    if (!base_.empty()) {
      EXPECT_TRUE(RemoveTree(base_).ok());
    }
  }
  void OpenStore(ImageStoreOptions options = {}) {
    store_.reset();
    absl::StatusOr<std::unique_ptr<ImageStore>> store = ImageStore::Open(root_, options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  ImageInfo MustImport(const std::string& path, const std::string& name = "") {
    absl::StatusOr<std::vector<ImageInfo>> images = store_->Import(path, name);
    EXPECT_TRUE(images.ok()) << images.status();
    if (!images.ok() || images->empty()) return {};
    return images->front();
  }
  std::string Path(const std::string& rel) { return base_ + "/" + rel; }

  // The two-layer image of the issue: layer 2 deletes a file of layer 1 with a whiteout and
  // makes a directory opaque.
  void BuildTwoLayerLayout(OciLayout& layout) {
    TarBuilder l1;
    l1.Dir("./")
        .Dir("etc")
        .File("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
        .File("etc/doomed", "to be deleted")
        .Dir("data")
        .File("data/old1", "1")
        .File("data/old2", "2")
        .Dir("bin")
        .Symlink("bin/sh", "/bin/tool")
        .Fifo("run/fifo");
    l1.Add({.path = "bin/tool",
            .content = "#!tool",
            .mode = 04755,
            .uid = 1000,
            .gid = 1001,
            .xattrs = {{"user.origin", "layer1"}}});
    l1.Hardlink("bin/tool-link", "bin/tool");
    TarBuilder l2;
    l2.File("etc/.wh.doomed", "")
        .File("data/.wh..wh..opq", "")
        .File("data/new", "fresh")
        .File("etc/hostname", "box\n");
    json run = {{"Entrypoint", {"/bin/tool"}},
                {"Cmd", {"--serve"}},
                {"Env", {"PATH=/bin", "MODE=test"}},
                {"WorkingDir", "/data"},
                {"User", "1000:1001"},
                {"ExposedPorts", {{"8080/tcp", json::object()}}}};
    layer1_ = l1.Build();
    layer2_ = l2.Build();
    layout.Index({Named(layout.Image({layer1_, layer2_}, run, {false, true}), "test/app:1")});
  }

  void CheckMergedTree(const ImageInfo& info) {
    ASSERT_EQ(info.layer_dirs.size(), 2u);
    EXPECT_EQ(info.layer_dirs[0], store_->LayerDir(Sha256Of(layer2_)));  // top first
    EXPECT_EQ(info.layer_dirs[1], store_->LayerDir(Sha256Of(layer1_)));
    // The overlayfs form on disk.
    struct stat st;
    ASSERT_EQ(::lstat((info.layer_dirs[0] + "/etc/doomed").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_EQ(st.st_rdev, ::makedev(0, 0));
    char value[8] = {};
    ASSERT_EQ(::lgetxattr((info.layer_dirs[0] + "/data").c_str(), "trusted.overlay.opaque", value,
                          sizeof(value)),
              1);
    EXPECT_EQ(value[0], 'y');

    std::string merged = Path("merged");
    Overlay overlay({info.layer_dirs[0], info.layer_dirs[1]}, merged);
    ASSERT_TRUE(overlay.mounted()) << "mount overlay: " << strerror(overlay.error());
    EXPECT_EQ(ReadAll(merged + "/etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
    EXPECT_EQ(ReadAll(merged + "/etc/hostname"), "box\n");
    EXPECT_FALSE(fs::exists(fs::symlink_status(merged + "/etc/doomed")));
    std::vector<std::string> data;
    for (const auto& e : fs::directory_iterator(merged + "/data")) {
      data.push_back(e.path().filename().string());
    }
    EXPECT_THAT(data, ElementsAre("new"));
    ASSERT_EQ(::lstat((merged + "/bin/tool").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 04755u);
    EXPECT_EQ(st.st_uid, 1000u);
    EXPECT_EQ(st.st_gid, 1001u);
    EXPECT_EQ(st.st_nlink, 2u);
    EXPECT_EQ(st.st_mtime, 1700000000);
    char origin[16] = {};
    EXPECT_EQ(::getxattr((merged + "/bin/tool").c_str(), "user.origin", origin, sizeof(origin)), 6);
    EXPECT_STREQ(origin, "layer1");
    EXPECT_EQ(fs::read_symlink(merged + "/bin/sh").string(), "/bin/tool");
    EXPECT_TRUE(fs::is_fifo(fs::symlink_status(merged + "/run/fifo")));
  }

  std::string base_;
  std::string root_;
  std::string canary_;
  std::string layer1_;
  std::string layer2_;
  std::unique_ptr<ImageStore> store_;
};

TEST_F(ImageStoreTest, ImportsOciLayoutDirectoryWithWhiteoutAndOpaqueDir) {
  OciLayout layout(Path("layout"));
  BuildTwoLayerLayout(layout);
  ImageInfo info = MustImport(layout.dir());
  EXPECT_EQ(info.id, layout.last_config_id());
  EXPECT_THAT(info.names, ElementsAre("test/app:1"));
  EXPECT_THAT(info.diff_ids,
              ElementsAre(Sha256Of(layer1_).ToString(), Sha256Of(layer2_).ToString()));
  EXPECT_THAT(info.config.entrypoint, ElementsAre("/bin/tool"));
  EXPECT_THAT(info.config.cmd, ElementsAre("--serve"));
  EXPECT_THAT(info.config.env, ElementsAre("PATH=/bin", "MODE=test"));
  EXPECT_EQ(info.config.working_dir, "/data");
  EXPECT_EQ(info.config.user, "1000:1001");
  EXPECT_THAT(info.config.exposed_ports, ElementsAre("8080/tcp"));
  EXPECT_EQ(info.created, "2024-05-06T07:08:09Z");
  EXPECT_GT(info.size, 0u);
  CheckMergedTree(info);

  // Inspect by name, default tag, id and id prefix; LayerDirs agrees.
  EXPECT_EQ(store_->Inspect("test/app:1")->id, info.id);
  EXPECT_EQ(store_->Inspect(info.id)->id, info.id);
  EXPECT_EQ(store_->Inspect(info.id.substr(7, 12))->id, info.id);
  EXPECT_TRUE(absl::IsNotFound(store_->Inspect("test/app").status()));
  absl::StatusOr<std::vector<std::string>> dirs = store_->LayerDirs("test/app:1");
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  EXPECT_EQ(*dirs, info.layer_dirs);
  EXPECT_EQ(Listing(root_ + "/tmp"), "");  // no work left behind
}

TEST_F(ImageStoreTest, ImportsOciLayoutTarAndGzippedTar) {
  OciLayout layout(Path("layout"));
  BuildTwoLayerLayout(layout);
  WriteAll(Path("layout.tar"), TarOfDir(layout.dir()));
  ImageInfo info = MustImport(Path("layout.tar"), "renamed:v2");
  EXPECT_EQ(info.id, layout.last_config_id());
  EXPECT_THAT(info.names, ElementsAre("renamed:v2"));
  CheckMergedTree(info);

  // The same image again, gzip'd, under another name: same id, layers reused, names merged.
  WriteAll(Path("layout.tar.gz"), Gzip(TarOfDir(layout.dir())));
  struct stat before;
  ASSERT_EQ(::stat(info.layer_dirs[0].c_str(), &before), 0);
  ImageInfo again = MustImport(Path("layout.tar.gz"));
  EXPECT_EQ(again.id, info.id);
  EXPECT_THAT(again.names, ElementsAre("renamed:v2", "test/app:1"));
  struct stat after;
  ASSERT_EQ(::stat(info.layer_dirs[0].c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(store_->List().size(), 1u);
  EXPECT_EQ(Listing(root_ + "/tmp"), "");
}

TEST_F(ImageStoreTest, ImportsDockerSaveArchive) {
  std::string l1 = TarBuilder().File("a.txt", "a").Dir("etc").File("etc/os", "docker").Build();
  std::string l2 = TarBuilder().File(".wh.a.txt", "").File("b.txt", "b").Build();
  json config = {{"architecture", HostPlatform().architecture},
                 {"os", "linux"},
                 {"config", {{"Cmd", {"/b.txt"}}, {"Env", {"X=1"}}}},
                 {"rootfs",
                  {{"type", "layers"},
                   {"diff_ids",
                    {Sha256Of(l1).ToString(), Sha256Of(l2).ToString(), Sha256Of(l1).ToString()}}}}};
  std::string config_text = config.dump();
  std::string config_name = Sha256Of(config_text).hex + ".json";
  std::string dir = Path("save");
  WriteAll(dir + "/" + config_name, config_text);
  WriteAll(dir + "/l1/layer.tar", l1);
  WriteAll(dir + "/l2/layer.tar", l2);
  fs::create_directories(dir + "/l3");
  // docker saves a repeated layer once and links to it; here the link comes first.
  fs::create_symlink("../l1/layer.tar", dir + "/l3/layer.tar");
  json manifest = json::array({{{"Config", config_name},
                                {"RepoTags", {"docker/app:latest", "docker/app:1.0"}},
                                {"Layers", {"l3/layer.tar", "l2/layer.tar", "l1/layer.tar"}}}});
  WriteAll(dir + "/manifest.json", manifest.dump());
  WriteAll(Path("save.tar"), TarOfDir(dir));

  ImageInfo info = MustImport(Path("save.tar"));
  EXPECT_EQ(info.id, "sha256:" + Sha256Of(config_text).hex);
  EXPECT_THAT(info.names, ElementsAre("docker/app:1.0", "docker/app:latest"));
  EXPECT_THAT(info.config.cmd, ElementsAre("/b.txt"));
  EXPECT_EQ(info.diff_ids.size(), 3u);
  // The repeated layer appears once, at its topmost position.
  ASSERT_EQ(info.layer_dirs.size(), 2u);
  EXPECT_EQ(info.layer_dirs[0], store_->LayerDir(Sha256Of(l1)));
  EXPECT_EQ(info.layer_dirs[1], store_->LayerDir(Sha256Of(l2)));
  EXPECT_EQ(ReadAll(info.layer_dirs[0] + "/etc/os"), "docker");
  EXPECT_EQ(ReadAll(info.layer_dirs[1] + "/b.txt"), "b");
  struct stat st;
  ASSERT_EQ(::lstat((info.layer_dirs[1] + "/a.txt").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));

  // A config that does not match the digest in its name is refused.
  WriteAll(dir + "/" + config_name, config_text + " ");
  WriteAll(Path("bad-save.tar"), TarOfDir(dir));
  absl::Status s = store_->Import(Path("bad-save.tar")).status();
  EXPECT_THAT(s.message(), HasSubstr("does not match the digest in its name"));
}

struct HostileCase {
  std::string name;
  std::function<std::string(const std::string& canary)> layer;
  std::string expected;
};

TEST_F(ImageStoreTest, HostileLayersAreRejectedAndLeaveNothing) {
  // The layer is unpacked at <store>/tmp/layer-XXXXXX, so "../../../canary" is the canary.
  std::vector<HostileCase> cases = {
      {"dotdot",
       [](const std::string&) {
         return TarBuilder().File("ok", "1").File("../../../canary/pwned", "x").Build();
       },
       "\"..\""},
      {"absolute path",
       [](const std::string& c) {
         return TarBuilder().File("ok", "1").File(c + "/pwned", "x").Build();
       },
       "absolute"},
      {"file through symlink",
       [](const std::string& c) {
         return TarBuilder().Symlink("esc", c).File("esc/pwned", "x").Build();
       },
       "symlink"},
      {"hardlink out",
       [](const std::string&) {
         return TarBuilder().Hardlink("h", "../../../canary/keep").Build();
       },
       "\"..\""},
      {"hardlink to absolute",
       [](const std::string& c) { return TarBuilder().Hardlink("h", c + "/keep").Build(); },
       "absolute"},
      {"device node",
       [](const std::string&) {
         return TarBuilder().Dir("dev").CharDevice("dev/mem", 1, 1).Build();
       },
       "device"},
      {"escaping relative symlink",
       [](const std::string&) {
         return TarBuilder().Symlink("s", "../../../canary").File("s/pwned", "x").Build();
       },
       "climbs above the layer root"},
      {"whiteout of dotdot",
       [](const std::string&) { return TarBuilder().File("a/.wh..", "").Build(); }, "whiteout"},
      {"whiteout used as directory",
       [](const std::string&) { return TarBuilder().File(".wh.x/pwned", "").Build(); }, "whiteout"},
      {"overlay xattr",
       [](const std::string&) {
         TarBuilder b;
         b.Add({.path = "d",
                .type = AE_IFDIR,
                .mode = 0755,
                .xattrs = {{"trusted.overlay.redirect", "/etc"}}});
         return b.Build();
       },
       "overlayfs"},
      {"too many entries",
       [](const std::string&) {
         TarBuilder b;
         for (int i = 0; i < 60; ++i) b.File("f" + std::to_string(i), "x");
         return b.Build();
       },
       "more than 50 entries"},
  };
  ImageStoreOptions options;
  options.limits.max_entries = 50;
  OpenStore(options);
  // An image already in the store must survive failed imports untouched.
  OciLayout good(Path("good"));
  std::string shared = TarBuilder().File("shared", "s").Build();
  good.Index({Named(good.Image({shared}, json::object()), "good:1")});
  MustImport(good.dir());
  const std::string store_before = Listing(root_);
  const std::string canary_before = Listing(canary_);

  int n = 0;
  for (const HostileCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::string layer = c.layer(canary_);
    // In an OCI layout whose other layer (already in the store) is fine, so the failure
    // comes from the entry rules; the hostile layer is on top.
    OciLayout layout(Path("hostile-" + std::to_string(n)));
    layout.Index({Named(layout.Image({shared, layer}, json::object()), "bad:1")});
    absl::Status s = store_->Import(layout.dir()).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(s.message(), HasSubstr(c.expected)) << s;
    EXPECT_THAT(s.message(), HasSubstr("layer 2 of 2")) << s;
    EXPECT_EQ(Listing(root_), store_before);
    EXPECT_EQ(Listing(canary_), canary_before);
    // The same as a tar of the layout.
    WriteAll(Path("hostile-" + std::to_string(n) + ".tar"), TarOfDir(layout.dir()));
    s = store_->Import(Path("hostile-" + std::to_string(n) + ".tar")).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_EQ(Listing(root_), store_before);
    EXPECT_EQ(Listing(canary_), canary_before);
    ++n;
  }
  EXPECT_FALSE(fs::exists(canary_ + "/pwned"));
  EXPECT_EQ(ReadAll(canary_ + "/keep"), "original");
  EXPECT_THAT(store_->List(), ::testing::SizeIs(1));
}

TEST_F(ImageStoreTest, HostileOuterArchivesAndCorruptBlobsLeaveNothing) {
  const std::string store_before = Listing(root_);
  const std::string canary_before = Listing(canary_);
  // The outer archive itself escaping.
  for (const auto& [name, tar] : std::vector<std::pair<std::string, std::string>>{
           {"outer-dotdot.tar",
            TarBuilder().File("oci-layout", "{}").File("../../../canary/x", "x").Build()},
           {"outer-link.tar", TarBuilder().Symlink("blobs", canary_).File("blobs/x", "x").Build()},
           {"outer-device.tar", TarBuilder().CharDevice("index.json", 1, 3).Build()},
           {"garbage.tar", std::string(3000, 'g')}}) {
    WriteAll(Path(name), tar);
    absl::Status s = store_->Import(Path(name)).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << name << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr(Path(name))) << s;
    EXPECT_EQ(Listing(root_), store_before) << name;
    EXPECT_EQ(Listing(canary_), canary_before) << name;
  }
  // A layer blob that does not match its digest, after a first layer that is fine: the
  // first layer, already moved into the store, is removed again.
  OciLayout layout(Path("corrupt"));
  std::string l1 = TarBuilder().File("one", "1").Build();
  std::string l2 = TarBuilder().File("two", "2").Build();
  json manifest = layout.Image({l1, l2}, json::object());
  layout.Index({manifest});
  std::string blob = Path("corrupt/blobs/sha256/") + Sha256Of(l2).hex;
  std::string content = ReadAll(blob);
  content[content.size() - 1] = 'X';  // in the zero padding: still a valid tar
  WriteAll(blob, content);
  absl::Status s = store_->Import(layout.dir()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr("the archive is corrupt"));
  EXPECT_EQ(Listing(root_), store_before);
  // A config for another architecture.
  OciLayout foreign(Path("foreign"));
  json run = json::object();
  json config = {{"architecture", "mips64"},
                 {"os", "linux"},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", {Sha256Of(l1).ToString()}}}}};
  json m = {{"schemaVersion", 2},
            {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
            {"config", foreign.Blob("application/vnd.oci.image.config.v1+json", config.dump())},
            {"layers", {foreign.Blob("application/vnd.oci.image.layer.v1.tar", l1)}}};
  foreign.Index({foreign.Blob("application/vnd.oci.image.manifest.v1+json", m.dump())});
  s = store_->Import(foreign.dir()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(Listing(root_), store_before);
}

TEST_F(ImageStoreTest, FailedMultiImageImportKeepsNothingOfTheGoodImage) {
  const std::string store_before = Listing(root_);
  OciLayout layout(Path("multi"));
  json good =
      Named(layout.Image({TarBuilder().File("good", "g").Build()}, json::object()), "multi/good:1");
  json bad = Named(layout.Image({TarBuilder().File("../bad", "b").Build()}, json::object()),
                   "multi/bad:1");
  layout.Index({good, bad});
  absl::Status s = store_->Import(layout.dir()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(Listing(root_), store_before);
  EXPECT_TRUE(store_->List().empty());
  // A name for an archive of two images is refused before anything is written.
  layout.Index({good, Named(layout.Image({TarBuilder().File("x", "x").Build()}, json::object()),
                            "multi/other:1")});
  s = store_->Import(layout.dir(), "one:name").status();
  EXPECT_THAT(s.message(), HasSubstr("holds 2 images"));
  std::vector<ImageInfo> both = *store_->Import(layout.dir());
  EXPECT_EQ(both.size(), 2u);
}

TEST_F(ImageStoreTest, BuiltInBusybox) {
  absl::StatusOr<ImageInfo> info = store_->EnsureBusybox();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_THAT(info->names, ElementsAre("busybox:latest"));
  EXPECT_THAT(info->config.cmd, ElementsAre("sh"));
  EXPECT_THAT(info->config.env,
              ElementsAre("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
  absl::StatusOr<ImageInfo> again = store_->EnsureBusybox();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id, info->id);  // deterministic

  absl::StatusOr<std::vector<std::string>> dirs = store_->LayerDirs("busybox");
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  ASSERT_EQ(dirs->size(), 1u);
  const std::string& layer = (*dirs)[0];
  struct stat bb, sh, tmp;
  ASSERT_EQ(::lstat((layer + "/bin/busybox").c_str(), &bb), 0);
  ASSERT_EQ(::lstat((layer + "/bin/sh").c_str(), &sh), 0);
  EXPECT_TRUE(S_ISREG(bb.st_mode));
  EXPECT_EQ(bb.st_mode & 07777, 0755u);
  EXPECT_EQ(bb.st_ino, sh.st_ino);  // applets are hardlinks
  ASSERT_EQ(::lstat((layer + "/tmp").c_str(), &tmp), 0);
  EXPECT_EQ(tmp.st_mode & 07777, 01777u);
  EXPECT_THAT(ReadAll(layer + "/etc/passwd"), HasSubstr("root:x:0:0:"));
  EXPECT_THAT(ReadAll(layer + "/etc/passwd"), HasSubstr(":65534:65534:"));
  EXPECT_THAT(ReadAll(layer + "/etc/group"), HasSubstr("root:x:0:"));
  EXPECT_TRUE(fs::exists(layer + "/usr/bin/wget"));

  // It runs: a shell from the layer, chrooted into it.
  SpawnOptions run;
  run.argv = {"chroot", layer, "/bin/sh", "-c",
              "echo hello from $(basename $(readlink -f /bin/ls))"};
  absl::StatusOr<CommandResult> r = RunCommand(run);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->status.ok()) << r->err;
  EXPECT_EQ(r->out, "hello from ls\n");

  // The same host busybox in a fresh store gives the same id.
  store_.reset();
  root_ = base_ + "/store2";
  OpenStore();
  EXPECT_EQ(store_->EnsureBusybox()->id, info->id);

  // An imported image called busybox keeps the name; the built-in stays reachable by id.
  OciLayout layout(Path("other-busybox"));
  layout.Index(
      {Named(layout.Image({TarBuilder().File("x", "x").Build()}, json::object()), "busybox")});
  ImageInfo imported = MustImport(layout.dir());
  EXPECT_THAT(imported.names, ElementsAre("busybox:latest"));
  absl::StatusOr<ImageInfo> builtin = store_->EnsureBusybox();
  ASSERT_TRUE(builtin.ok()) << builtin.status();
  EXPECT_TRUE(builtin->names.empty());
  EXPECT_EQ(store_->Inspect("busybox")->id, imported.id);

  // A dynamically linked "busybox" is refused with the fix.
  ImageStoreOptions options;
  options.busybox_path = "/bin/sh";
  store_.reset();
  root_ = base_ + "/store3";
  OpenStore(options);
  absl::Status s = store_->EnsureBusybox().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("busybox-static"));
}

TEST_F(ImageStoreTest, RemoveIsRefusedWhileUsedAndDeletesOnlyUnusedLayers) {
  std::string base = TarBuilder().File("base", "b").Build();
  std::string top_a = TarBuilder().File("a", "a").Build();
  std::string top_b = TarBuilder().File("b", "b").Build();
  OciLayout la(Path("a"));
  la.Index({Named(la.Image({base, top_a}, json::object()), "img/a")});
  OciLayout lb(Path("b"));
  lb.Index({Named(lb.Image({base, top_b}, json::object()), "img/b")});
  ImageInfo a = MustImport(la.dir());
  ImageInfo b = MustImport(lb.dir());

  absl::StatusOr<std::string> id = store_->AddUser("img/a", "web-1");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, a.id);
  ASSERT_TRUE(store_->AddUser(a.id, "web-2").ok());
  ASSERT_TRUE(store_->AddUser(a.id, "web-2").ok());  // idempotent
  EXPECT_THAT(store_->Inspect("img/a")->users, ElementsAre("web-1", "web-2"));
  absl::Status s = store_->Remove("img/a");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("web-1, web-2"));
  EXPECT_TRUE(fs::exists(store_->LayerDir(Sha256Of(top_a))));

  // One of several names goes alone, also while the image is used (docker rmi of one tag);
  // the only name, or an id, is not untagged.
  ASSERT_TRUE(store_->Tag("img/a", "img/a:2").ok());
  auto untag = [this](absl::string_view ref) { return store_->Untag(ref).value_or(false); };
  EXPECT_TRUE(untag("img/a:2"));
  EXPECT_TRUE(absl::IsNotFound(store_->Inspect("img/a:2").status()));
  EXPECT_THAT(store_->Inspect("img/a")->users, ElementsAre("web-1", "web-2"));
  EXPECT_FALSE(untag("img/a"));
  EXPECT_TRUE(store_->Untag("img/a").ok());
  EXPECT_FALSE(untag(a.id));
  EXPECT_TRUE(store_->Untag(a.id).ok());
  EXPECT_TRUE(absl::IsNotFound(store_->Untag("img/none").status()));
  EXPECT_TRUE(store_->Inspect("img/a").ok());

  ASSERT_TRUE(store_->RemoveUser(a.id, "web-1").ok());
  ASSERT_TRUE(store_->RemoveUser(a.id, "web-2").ok());
  ASSERT_TRUE(store_->RemoveUser(a.id, "never-there").ok());
  ASSERT_TRUE(store_->Remove("img/a").ok());
  EXPECT_TRUE(absl::IsNotFound(store_->Inspect("img/a").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->Remove("img/a")));
  EXPECT_FALSE(fs::exists(store_->LayerDir(Sha256Of(top_a))));
  EXPECT_TRUE(fs::exists(store_->LayerDir(Sha256Of(base))));  // img/b still uses it
  ASSERT_TRUE(store_->LayerDirs("img/b").ok());

  ASSERT_TRUE(store_->Remove(b.id).ok());
  EXPECT_FALSE(fs::exists(store_->LayerDir(Sha256Of(base))));
  EXPECT_FALSE(fs::exists(store_->LayerDir(Sha256Of(top_b))));
  EXPECT_TRUE(store_->List().empty());
  EXPECT_EQ(Listing(root_ + "/layers/sha256"), "");
  EXPECT_EQ(Listing(root_ + "/tmp"), "");
  EXPECT_TRUE(RemoveTree(root_ + "/images/none").ok());
}

TEST_F(ImageStoreTest, ReopenSeesTheSameImagesAndCollectsCrashLeftovers) {
  OciLayout layout(Path("layout"));
  BuildTwoLayerLayout(layout);
  ImageInfo info = MustImport(layout.dir());
  ASSERT_TRUE(store_->AddUser(info.id, "db-1").ok());
  ASSERT_TRUE(store_->Tag(info.id, "alias").ok());
  ASSERT_TRUE(store_->EnsureBusybox().ok());
  std::vector<ImageInfo> before = store_->List();

  // Only one store at a time.
  absl::Status s = ImageStore::Open(root_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;

  // What a crash could leave: work in tmp, an orphan layer, a name of a missing image.
  store_.reset();
  fs::create_directories(root_ + "/tmp/layer-crashed/sub");
  std::string orphan = root_ + "/layers/sha256/" + std::string(64, 'e');
  fs::create_directories(orphan + "/etc");
  json names = json::parse(ReadAll(root_ + "/names.json"));
  names["ghost:latest"] = std::string(64, 'f');
  WriteAll(root_ + "/names.json", names.dump());

  OpenStore();
  std::vector<ImageInfo> after = store_->List();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].id, before[i].id);
    EXPECT_EQ(after[i].names, before[i].names);
    EXPECT_EQ(after[i].diff_ids, before[i].diff_ids);
    EXPECT_EQ(after[i].layer_dirs, before[i].layer_dirs);
    EXPECT_EQ(after[i].users, before[i].users);
    EXPECT_EQ(after[i].size, before[i].size);
    EXPECT_EQ(after[i].config.cmd, before[i].config.cmd);
    EXPECT_EQ(after[i].imported, before[i].imported);
  }
  EXPECT_THAT(store_->Inspect("alias")->names, ElementsAre("alias:latest", "test/app:1"));
  EXPECT_EQ(Listing(root_ + "/tmp"), "");
  EXPECT_FALSE(fs::exists(orphan));
  EXPECT_TRUE(absl::IsNotFound(store_->Inspect("ghost").status()));
  EXPECT_THAT(store_->Remove(info.id).message(), HasSubstr("db-1"));
  CheckMergedTree(*store_->Inspect("alias"));
}

TEST_F(ImageStoreTest, ConcurrentImportsShareLayers) {
  std::string shared = TarBuilder().File("shared", std::string(1 << 20, 's')).Build();
  std::vector<std::string> dirs;
  for (int i = 0; i < 4; ++i) {
    OciLayout layout(Path("c" + std::to_string(i)));
    std::string own = TarBuilder().File("own", std::to_string(i)).Build();
    layout.Index(
        {Named(layout.Image({shared, own}, json::object()), "concurrent:" + std::to_string(i))});
    dirs.push_back(layout.dir());
  }
  std::vector<absl::Status> results(dirs.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < dirs.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = store_->Import(dirs[i]).status(); });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& r : results) EXPECT_TRUE(r.ok()) << r;
  EXPECT_EQ(store_->List().size(), 4u);
  size_t layers = 0;
  for (const auto& e : fs::directory_iterator(root_ + "/layers/sha256")) {
    (void)e;
    ++layers;
  }
  EXPECT_EQ(layers, 5u);
  EXPECT_EQ(Listing(root_ + "/tmp"), "");
  EXPECT_EQ(store_->Inspect("concurrent:0")->size, (1u << 20) + 1);
}

}  // namespace
}  // namespace mesh::runtime::image
