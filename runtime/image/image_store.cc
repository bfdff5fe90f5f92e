#include "runtime/image/image_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/file_lock.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"
#include "runtime/image/archive_reader.h"
#include "runtime/image/fs.h"
#include "runtime/image/layer_writer.h"
#include "runtime/image/reference.h"

namespace mesh::runtime::image {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxRecordBytes = 64 << 20;
constexpr size_t kMaxContainerIdLength = 256;

std::string Quote(absl::string_view s) {
  return absl::StrCat("\"", absl::CHexEscape(s.substr(0, 300)), "\"");
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Removes a temp directory on scope exit unless released (it was renamed into place).
class TempDir {
 public:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  ~TempDir() {
    if (!path_.empty()) RemoveTree(path_).IgnoreError();  // best effort; Open() sweeps tmp
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

// Reads a small file of an unpacked archive or layout, confined to `dir_fd`.
absl::StatusOr<std::string> ReadSmall(int dir_fd, const std::string& rel, size_t max,
                                      const std::string& what) {
  int raw = OpenAt2(dir_fd, rel.c_str(), O_RDONLY, kResolveConfined);
  if (raw < 0) {
    if (errno == ENOENT) {
      return absl::InvalidArgumentError(absl::StrCat(what, " ", Quote(rel), " is missing"));
    }
    return mesh::ErrnoToStatus(errno, absl::StrCat("open ", what, " ", Quote(rel)));
  }
  UniqueFd fd(raw);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return mesh::ErrnoToStatus(errno, absl::StrCat("stat ", rel));
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", Quote(rel), " is not a file"));
  }
  if (static_cast<uint64_t>(st.st_size) > max) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", Quote(rel), " has ", st.st_size,
                                                   " bytes, more than the limit of ", max));
  }
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return mesh::ErrnoToStatus(errno, absl::StrCat("read ", rel));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

// Names given by an archive, checked and completed with ":latest".
absl::StatusOr<std::vector<std::string>> ArchiveNames(const std::vector<std::string>& raw,
                                                      absl::string_view where) {
  std::vector<std::string> out;
  for (const std::string& name : raw) {
    absl::StatusOr<Reference> ref = ParseReference(name);
    if (!ref.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " names the image ", Quote(name), ", which is not a valid name (",
                       ref.status().message(), "); import it with an explicit name instead"));
    }
    std::string full = ref->ToString();
    if (std::find(out.begin(), out.end(), full) == out.end()) out.push_back(std::move(full));
  }
  return out;
}

absl::Status ValidateContainerId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxContainerIdLength) {
    return absl::InvalidArgumentError(absl::StrCat("container id ", Quote(id), " must be 1 to ",
                                                   kMaxContainerIdLength, " characters"));
  }
  for (char c : id) {
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat("container id ", Quote(id), " holds a space or control character"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

// What one import has pinned and created; undone unless committed.
class ImageStore::Staging {
 public:
  explicit Staging(ImageStore& store) : store_(store) {}
  ~Staging() {
    if (committed_) return;
    std::vector<std::string> retired;
    {
      absl::MutexLock lock(&store_.mu_);
      UnpinLocked();
      retired = store_.RetireLayersLocked(created_);
    }
    store_.DeleteRetired(retired);
  }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  void PinLocked(const std::string& hex) ABSL_EXCLUSIVE_LOCKS_REQUIRED(store_.mu_) {
    ++store_.pins_[hex];
    pinned_.push_back(hex);
  }
  void CreatedLocked(const std::string& hex) ABSL_EXCLUSIVE_LOCKS_REQUIRED(store_.mu_) {
    created_.push_back(hex);
  }
  // The records now hold the layers: drop the pins and keep everything.
  void CommitLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(store_.mu_) {
    UnpinLocked();
    committed_ = true;
  }

 private:
  void UnpinLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(store_.mu_) {
    for (const std::string& hex : pinned_) {
      auto it = store_.pins_.find(hex);
      if (it != store_.pins_.end() && --it->second <= 0) store_.pins_.erase(it);
    }
    pinned_.clear();
  }

  ImageStore& store_;
  std::vector<std::string> pinned_;
  std::vector<std::string> created_;
  bool committed_ = false;
};

absl::StatusOr<std::unique_ptr<ImageStore>> ImageStore::Open(std::string root,
                                                             ImageStoreOptions options) {
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (root.empty() || root.front() != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("image store root ", Quote(root), " must be an absolute path"));
  }
  for (const std::string& dir :
       {root, root + "/layers", root + "/layers/sha256", root + "/images", root + "/tmp"}) {
    MESH_RETURN_IF_ERROR(mesh::Annotate(EnsureDirectory(dir, 0700), "open image store"));
  }
  // Layers hold setuid files owned by root: nobody but root may reach them on the host.
  if (::chmod(root.c_str(), 0700) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("chmod image store ", Quote(root)));
  }
  absl::StatusOr<UniqueFd> lock = TryLockFile(root + "/.lock");
  if (absl::IsFailedPrecondition(lock.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("image store ", Quote(root),
                     " is already open (by another process or another ImageStore here); "
                     "only one may use it at a time"));
  }
  if (!lock.ok()) return lock.status();
  std::unique_ptr<ImageStore> store(new ImageStore(root, std::move(options), *std::move(lock)));
  MESH_RETURN_IF_ERROR(
      mesh::Annotate(store->Load(), absl::StrCat("open image store ", Quote(root))));
  return store;
}

absl::Status ImageStore::Load() {
  // 1. Leftovers of imports and removals that a crash interrupted.
  {
    MESH_ASSIGN_OR_RETURN(UniqueFd tmp, OpenDirectory(TmpDir()));
    std::vector<std::string> names;
    int copy = ::fcntl(tmp.get(), F_DUPFD_CLOEXEC, 0);
    if (copy < 0) return mesh::ErrnoToStatus(errno, "read tmp directory");
    DIR* dir = ::fdopendir(copy);
    if (dir == nullptr) {
      ::close(copy);
      return mesh::ErrnoToStatus(errno, "read tmp directory");
    }
    while (dirent* e = ::readdir(dir)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
        names.emplace_back(e->d_name);
      }
    }
    ::closedir(dir);
    for (const std::string& name : names) {
      MESH_RETURN_IF_ERROR(mesh::Annotate(RemoveTreeAt(tmp.get(), name), "clean tmp"));
    }
  }

  absl::MutexLock lock(&mu_);
  // 2. Image records.
  {
    std::string images_dir = root_ + "/images";
    std::vector<std::string> files;
    DIR* dir = ::opendir(images_dir.c_str());
    if (dir == nullptr) return mesh::ErrnoToStatus(errno, absl::StrCat("read ", images_dir));
    while (dirent* e = ::readdir(dir)) files.emplace_back(e->d_name);
    ::closedir(dir);
    for (const std::string& file : files) {
      std::string path = absl::StrCat(images_dir, "/", file);
      if (absl::StartsWith(file, ".") && absl::StrContains(file, ".tmp.")) {
        ::unlink(path.c_str());  // a temp file of an interrupted atomic write
        continue;
      }
      if (!absl::EndsWith(file, ".json") || !IsSha256Hex(file.substr(0, file.size() - 5))) {
        continue;
      }
      std::string hex = file.substr(0, file.size() - 5);
      auto corrupt = [&](absl::string_view why) {
        return absl::DataLossError(absl::StrCat("image record ", Quote(path), " is corrupt (", why,
                                                "); move it away and import the image "
                                                "again"));
      };
      MESH_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
      if (text.size() > kMaxRecordBytes) return corrupt("too large");
      absl::StatusOr<json> j = ParseJson(text, "image record");
      if (!j.ok()) return corrupt(j.status().message());
      Record rec;
      try {
        rec.config_blob = j->at("config").get<std::string>();
        for (const json& l : j->at("layers")) {
          absl::StatusOr<Digest> d = ParseDigest(l.at("diff_id").get<std::string>());
          if (!d.ok()) return corrupt(d.status().message());
          rec.layers.push_back(LayerRef{*d, l.at("size").get<uint64_t>()});
        }
        for (const json& u : j->at("users")) rec.users.push_back(u.get<std::string>());
        std::string imported = j->at("imported").get<std::string>();
        std::string err;
        if (!absl::ParseTime(absl::RFC3339_full, imported, &rec.imported, &err)) {
          return corrupt(absl::StrCat("imported time: ", err));
        }
      } catch (const json::exception& e) {
        return corrupt(e.what());
      }
      rec.id = Sha256Of(rec.config_blob);
      if (rec.id.hex != hex) return corrupt("its config does not hash to its id");
      absl::StatusOr<ImageConfig> config = ParseImageConfig(rec.config_blob);
      if (!config.ok()) return corrupt(config.status().message());
      rec.config = *std::move(config);
      for (const LayerRef& l : rec.layers) layer_sizes_[l.diff_id.hex] = l.size;
      images_[hex] = std::move(rec);
    }
  }
  // 3. Names; those of images that are gone are dropped.
  {
    absl::StatusOr<std::string> text = ReadFile(NamesPath());
    if (!text.ok() && !absl::IsNotFound(text.status())) return text.status();
    if (text.ok()) {
      absl::StatusOr<json> j = ParseJson(*text, "names.json");
      if (!j.ok() || !j->is_object()) {
        return absl::DataLossError(absl::StrCat(Quote(NamesPath()),
                                                " is corrupt; move it away (images stay, "
                                                "untagged) and tag them again"));
      }
      bool dropped = false;
      for (auto it = j->begin(); it != j->end(); ++it) {
        if (!it.value().is_string()) continue;
        std::string hex = it.value().get<std::string>();
        if (images_.contains(hex)) {
          names_[it.key()] = hex;
        } else {
          dropped = true;
        }
      }
      if (dropped) MESH_RETURN_IF_ERROR(WriteNamesLocked());
    }
  }
  // 4. Layers no record lists (an import or removal was cut short).
  std::set<std::string> used;
  for (const auto& [hex, rec] : images_) {
    for (const LayerRef& l : rec.layers) used.insert(l.diff_id.hex);
  }
  std::vector<std::string> unused;
  {
    std::string layers_dir = root_ + "/layers/sha256";
    DIR* dir = ::opendir(layers_dir.c_str());
    if (dir == nullptr) return mesh::ErrnoToStatus(errno, absl::StrCat("read ", layers_dir));
    while (dirent* e = ::readdir(dir)) {
      if (IsSha256Hex(e->d_name) && !used.contains(e->d_name)) unused.emplace_back(e->d_name);
    }
    ::closedir(dir);
  }
  std::vector<std::string> retired = RetireLayersLocked(unused);
  for (const std::string& path : retired) {
    MESH_RETURN_IF_ERROR(mesh::Annotate(RemoveTree(path), "remove unused layer"));
  }
  return absl::OkStatus();
}

std::string ImageStore::LayerDir(const Digest& diff_id) const {
  return absl::StrCat(root_, "/layers/sha256/", diff_id.hex);
}

std::string ImageStore::RecordPath(const std::string& hex) const {
  return absl::StrCat(root_, "/images/", hex, ".json");
}

absl::Status ImageStore::WriteRecordLocked(const Record& record) const {
  json layers = json::array();
  for (const LayerRef& l : record.layers) {
    json layer = json::object();
    layer["diff_id"] = l.diff_id.ToString();
    layer["size"] = l.size;
    layers.push_back(layer);
  }
  json j = json::object();
  j["id"] = record.id.ToString();
  j["config"] = record.config_blob;
  j["layers"] = layers;
  j["users"] = record.users;
  j["imported"] = absl::FormatTime(absl::RFC3339_full, record.imported, absl::UTCTimeZone());
  return WriteFileAtomically(RecordPath(record.id.hex), j.dump(2) + "\n", 0600);
}

absl::Status ImageStore::WriteNamesLocked() const {
  json j = json::object();
  for (const auto& [name, hex] : names_) j[name] = hex;
  return WriteFileAtomically(NamesPath(), j.dump(2) + "\n", 0600);
}

bool ImageStore::LayerInUseLocked(const std::string& hex) const {
  if (pins_.contains(hex)) return true;
  for (const auto& [id, rec] : images_) {
    for (const LayerRef& l : rec.layers) {
      if (l.diff_id.hex == hex) return true;
    }
  }
  return false;
}

std::vector<std::string> ImageStore::RetireLayersLocked(const std::vector<std::string>& hexes) {
  std::vector<std::string> out;
  for (const std::string& hex : hexes) {
    if (LayerInUseLocked(hex)) continue;
    std::string dir = absl::StrCat(root_, "/layers/sha256/", hex);
    if (!Exists(dir)) continue;
    // Renamed over an empty temp directory, so the layer vanishes from the store at once and
    // the slow deletion runs without the lock (a crash leaves it in tmp, swept by Open).
    absl::StatusOr<std::string> trash = MakeTempDir(TmpDir(), "trash-");
    if (!trash.ok() || ::rename(dir.c_str(), trash->c_str()) != 0) {
      if (trash.ok()) ::rmdir(trash->c_str());
      continue;  // left in place: the next Open collects it
    }
    layer_sizes_.erase(hex);
    out.push_back(*trash);
  }
  return out;
}

void ImageStore::DeleteRetired(const std::vector<std::string>& paths) const {
  for (const std::string& path : paths) {
    RemoveTree(path).IgnoreError();  // out of the store already; Open sweeps what is left
  }
}

absl::StatusOr<std::string> ImageStore::ResolveLocked(absl::string_view ref) const {
  if (ref.empty()) return absl::InvalidArgumentError("image reference is empty");
  absl::StatusOr<Reference> parsed = ParseReference(ref);
  if (parsed.ok()) {
    auto it = names_.find(parsed->ToString());
    if (it != names_.end()) return it->second;
  }
  absl::string_view hex = ref;
  absl::ConsumePrefix(&hex, "sha256:");
  bool is_hex = !hex.empty() && hex.size() <= 64 && std::all_of(hex.begin(), hex.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
  if (is_hex) {
    std::vector<std::string> matches;
    for (auto it = images_.lower_bound(std::string(hex));
         it != images_.end() && absl::StartsWith(it->first, hex); ++it) {
      matches.push_back(it->first);
    }
    if (matches.size() == 1) return matches[0];
    if (matches.size() > 1) {
      return absl::InvalidArgumentError(absl::StrCat("image id prefix ", Quote(ref),
                                                     " is ambiguous (", matches.size(),
                                                     " images match): give more digits"));
    }
  }
  return absl::NotFoundError(
      absl::StrCat("image ", Quote(ref), " not found: list images to see names and ids"));
}

ImageInfo ImageStore::InfoLocked(const Record& record) const {
  ImageInfo info;
  info.id = record.id.ToString();
  for (const auto& [name, hex] : names_) {
    if (hex == record.id.hex) info.names.push_back(name);
  }
  std::set<std::string> counted;
  for (const LayerRef& l : record.layers) {
    info.diff_ids.push_back(l.diff_id.ToString());
    if (counted.insert(l.diff_id.hex).second) info.size += l.size;
  }
  std::set<std::string> listed;
  for (auto it = record.layers.rbegin(); it != record.layers.rend(); ++it) {
    if (listed.insert(it->diff_id.hex).second) info.layer_dirs.push_back(LayerDir(it->diff_id));
  }
  info.config = record.config;
  info.created = record.config.created;
  info.imported = record.imported;
  info.users = record.users;
  return info;
}

absl::StatusOr<std::vector<ImageStore::ImagePlan>> ImageStore::PlanOci(int dir_fd) const {
  MESH_ASSIGN_OR_RETURN(std::string layout,
                        ReadSmall(dir_fd, "oci-layout", 4096, "OCI layout file"));
  MESH_RETURN_IF_ERROR(CheckOciLayout(layout));
  MESH_ASSIGN_OR_RETURN(std::string index_text,
                        ReadSmall(dir_fd, "index.json", kMaxManifestBytes, "OCI index"));
  MESH_ASSIGN_OR_RETURN(OciIndex index, ParseOciIndex(index_text));
  auto fetch = [dir_fd](const Descriptor& d, size_t max) -> absl::StatusOr<std::string> {
    if (d.size < 0 || static_cast<uint64_t>(d.size) > max) {
      return absl::InvalidArgumentError(absl::StrCat("blob ", d.digest.ToString(), " declares ",
                                                     d.size, " bytes, more than the limit of ",
                                                     max));
    }
    MESH_ASSIGN_OR_RETURN(std::string blob,
                          ReadSmall(dir_fd, "blobs/sha256/" + d.digest.hex, max, "blob"));
    MESH_RETURN_IF_ERROR(VerifyBlob(d, blob));
    return blob;
  };
  MESH_ASSIGN_OR_RETURN(
      std::vector<ResolvedImage> images,
      ResolveOciImages(
          index, [&](const Descriptor& d) { return fetch(d, kMaxManifestBytes); }, HostPlatform()));
  std::vector<ImagePlan> plans;
  for (const ResolvedImage& image : images) {
    ImagePlan plan;
    MESH_ASSIGN_OR_RETURN(plan.config_blob, fetch(image.manifest.config, kMaxConfigBytes));
    MESH_ASSIGN_OR_RETURN(plan.config, ParseImageConfig(plan.config_blob));
    MESH_RETURN_IF_ERROR(CheckPlatform(plan.config, HostPlatform()));
    if (plan.config.diff_ids.size() != image.manifest.layers.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("image manifest ", image.descriptor.digest.ToString(), " lists ",
                       image.manifest.layers.size(), " layers but its config lists ",
                       plan.config.diff_ids.size(), " diff_ids"));
    }
    for (size_t i = 0; i < image.manifest.layers.size(); ++i) {
      const Descriptor& d = image.manifest.layers[i];
      plan.layers.push_back(LayerPlan{"blobs/sha256/" + d.digest.hex, true, d.digest, d.size,
                                      plan.config.diff_ids[i]});
    }
    MESH_ASSIGN_OR_RETURN(plan.names, ArchiveNames(image.names, "the OCI index"));
    plans.push_back(std::move(plan));
  }
  return plans;
}

absl::StatusOr<std::vector<ImageStore::ImagePlan>> ImageStore::PlanDocker(int dir_fd) const {
  MESH_ASSIGN_OR_RETURN(std::string text,
                        ReadSmall(dir_fd, "manifest.json", kMaxManifestBytes, "manifest"));
  MESH_ASSIGN_OR_RETURN(std::vector<DockerManifestEntry> entries, ParseDockerManifest(text));
  std::vector<ImagePlan> plans;
  for (const DockerManifestEntry& e : entries) {
    ImagePlan plan;
    MESH_ASSIGN_OR_RETURN(plan.config_blob,
                          ReadSmall(dir_fd, e.config, kMaxConfigBytes, "image config"));
    // docker names the config after its digest ("<hex>.json", or "blobs/sha256/<hex>").
    absl::string_view base = e.config;
    if (size_t slash = base.rfind('/'); slash != absl::string_view::npos) {
      base.remove_prefix(slash + 1);
    }
    absl::ConsumeSuffix(&base, ".json");
    if (IsSha256Hex(base) && Sha256Of(plan.config_blob).hex != base) {
      return absl::InvalidArgumentError(absl::StrCat("image config ", Quote(e.config),
                                                     " does not match the digest in its name: "
                                                     "the archive is corrupt"));
    }
    MESH_ASSIGN_OR_RETURN(plan.config, ParseImageConfig(plan.config_blob));
    MESH_RETURN_IF_ERROR(CheckPlatform(plan.config, HostPlatform()));
    if (plan.config.diff_ids.size() != e.layers.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("manifest.json lists ", e.layers.size(), " layers for ", Quote(e.config),
                       " but the config lists ", plan.config.diff_ids.size(), " diff_ids"));
    }
    for (size_t i = 0; i < e.layers.size(); ++i) {
      plan.layers.push_back(LayerPlan{e.layers[i], false, {}, -1, plan.config.diff_ids[i]});
    }
    MESH_ASSIGN_OR_RETURN(plan.names, ArchiveNames(e.repo_tags, "manifest.json"));
    plans.push_back(std::move(plan));
  }
  return plans;
}

absl::StatusOr<ImageStore::LayerRef> ImageStore::StageLayer(int dir_fd, const std::string& what,
                                                            const LayerPlan& layer,
                                                            Staging& staging) {
  const std::string& hex = layer.diff_id.hex;
  std::string final_dir = LayerDir(layer.diff_id);
  {
    absl::MutexLock lock(&mu_);
    if (Exists(final_dir)) {  // complete by construction: only finished layers are renamed in
      staging.PinLocked(hex);
      auto size = layer_sizes_.find(hex);
      return LayerRef{layer.diff_id, size == layer_sizes_.end() ? 0 : size->second};
    }
  }
  int raw = OpenAt2(dir_fd, layer.path.c_str(), O_RDONLY, kResolveConfined);
  if (raw < 0) {
    if (errno == ENOENT) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": blob is missing from the archive"));
    }
    return mesh::ErrnoToStatus(errno, absl::StrCat(what, ": open"));
  }
  UniqueFd blob(raw);
  struct stat st;
  if (::fstat(blob.get(), &st) != 0)
    return mesh::ErrnoToStatus(errno, absl::StrCat(what, ": stat"));
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a regular file"));
  }
  if (layer.stored_size >= 0 && st.st_size != layer.stored_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": has ", st.st_size, " bytes, its descriptor says ", layer.stored_size));
  }
  MESH_ASSIGN_OR_RETURN(std::string tmp_path, MakeTempDir(TmpDir(), "layer-"));
  TempDir tmp(tmp_path);
  if (::chmod(tmp.path().c_str(), 0755) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("chmod ", Quote(tmp.path())));
  }
  MESH_ASSIGN_OR_RETURN(std::unique_ptr<DiskLayerSink> sink,
                        DiskLayerSink::Create(tmp.path(), DiskSinkOptions{}));
  ArchiveReadOptions read_options;
  read_options.limits = options_.limits;
  read_options.overlay_whiteouts = true;
  read_options.what = what;
  MESH_ASSIGN_OR_RETURN(ArchiveDigests digests, ReadArchive(blob.get(), read_options, *sink));
  if (layer.verify_stored_digest && digests.stored != layer.stored_digest) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": content hashes to ", digests.stored.ToString(), ", not to its digest ",
        layer.stored_digest.ToString(), ": the archive is corrupt"));
  }
  if (digests.diff_id != layer.diff_id) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": uncompressed content hashes to ", digests.diff_id.ToString(),
                     ", but the image config says its diff_id is ", layer.diff_id.ToString(),
                     ": the archive is corrupt"));
  }
  absl::MutexLock lock(&mu_);
  if (!Exists(final_dir)) {
    if (::rename(tmp.path().c_str(), final_dir.c_str()) != 0) {
      return mesh::ErrnoToStatus(errno, absl::StrCat(what, ": move layer into ", Quote(final_dir)));
    }
    tmp.Release();
    staging.CreatedLocked(hex);
    layer_sizes_[hex] = digests.content_bytes;
  }
  // else: a concurrent import put the same layer in place first; ours is deleted by `tmp`.
  staging.PinLocked(hex);
  return LayerRef{layer.diff_id, digests.content_bytes};
}

absl::StatusOr<std::vector<ImageInfo>> ImageStore::ImportPlans(int dir_fd, const std::string& what,
                                                               std::vector<ImagePlan> plans,
                                                               bool steal_names) {
  Staging staging(*this);
  std::vector<std::vector<LayerRef>> layers(plans.size());
  for (size_t p = 0; p < plans.size(); ++p) {
    const ImagePlan& plan = plans[p];
    for (size_t i = 0; i < plan.layers.size(); ++i) {
      std::string layer_what = absl::StrCat(what, ": layer ", i + 1, " of ", plan.layers.size(),
                                            " (", Quote(plan.layers[i].path), ")");
      MESH_ASSIGN_OR_RETURN(LayerRef ref, StageLayer(dir_fd, layer_what, plan.layers[i], staging));
      layers[p].push_back(ref);
    }
  }
  // Records must never point at layer data still in the page cache only.
  if (::syncfs(lock_.get()) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("sync file system of ", Quote(root_)));
  }

  absl::MutexLock lock(&mu_);
  std::map<std::string, std::string> saved_names = names_;
  std::vector<std::string> written;
  auto undo_records = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const std::string& hex : written) {
      ::unlink(RecordPath(hex).c_str());
      images_.erase(hex);
    }
    names_ = saved_names;
  };
  std::vector<std::string> ids;
  absl::Time now = absl::Now();
  for (size_t p = 0; p < plans.size(); ++p) {
    ImagePlan& plan = plans[p];
    std::string hex = Sha256Of(plan.config_blob).hex;
    ids.push_back(hex);
    if (!images_.contains(hex)) {
      Record rec;
      rec.id = Digest{hex};
      rec.config_blob = std::move(plan.config_blob);
      rec.config = std::move(plan.config);
      rec.layers = layers[p];
      rec.imported = now;
      absl::Status status = WriteRecordLocked(rec);
      if (!status.ok()) {
        undo_records();
        return mesh::Annotate(status, absl::StrCat(what, ": write image record"));
      }
      written.push_back(hex);
      images_[hex] = std::move(rec);
    }
    for (const std::string& name : plan.names) {
      auto it = names_.find(name);
      if (!steal_names && it != names_.end() && it->second != hex) continue;
      names_[name] = hex;
    }
  }
  if (names_ != saved_names) {
    absl::Status status = WriteNamesLocked();
    if (!status.ok()) {
      undo_records();
      return mesh::Annotate(status, absl::StrCat(what, ": write names"));
    }
  }
  staging.CommitLocked();
  std::vector<ImageInfo> out;
  for (const std::string& hex : ids) out.push_back(InfoLocked(images_.at(hex)));
  return out;
}

absl::StatusOr<std::vector<ImageInfo>> ImageStore::Import(const std::string& path,
                                                          absl::string_view name) {
  std::string what = absl::StrCat("import ", Quote(path));
  std::optional<Reference> forced;
  if (!name.empty()) {
    absl::StatusOr<Reference> ref = ParseReference(name);
    if (!ref.ok()) return mesh::Annotate(ref.status(), what);
    forced = *ref;
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return mesh::ErrnoToStatus(errno, what);

  std::optional<TempDir> work;
  UniqueFd layout;
  if (S_ISDIR(st.st_mode)) {
    MESH_ASSIGN_OR_RETURN(layout, OpenDirectory(path));
  } else if (S_ISREG(st.st_mode)) {
    // An archive of a layout or of `docker save`: unpacked (as plain files, no owners, no
    // whiteouts, under the same rules as layers) into a work directory first, because the
    // documents that say what to read may come after the blobs.
    // O_NONBLOCK: a fifo swapped in after the stat must not hang the import.
    UniqueFd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!file) return mesh::ErrnoToStatus(errno, what);
    struct stat opened;
    if (::fstat(file.get(), &opened) != 0 || !S_ISREG(opened.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": not a regular file"));
    }
    MESH_ASSIGN_OR_RETURN(std::string work_path, MakeTempDir(TmpDir(), "import-"));
    work.emplace(work_path);
    DiskSinkOptions plain;
    plain.overlay_whiteouts = false;
    plain.preserve_owner = false;
    plain.preserve_xattrs = false;
    MESH_ASSIGN_OR_RETURN(std::unique_ptr<DiskLayerSink> sink,
                          DiskLayerSink::Create(work->path(), plain));
    ArchiveReadOptions read_options;
    read_options.limits = options_.limits;
    read_options.overlay_whiteouts = false;
    read_options.what = what;
    MESH_RETURN_IF_ERROR(ReadArchive(file.get(), read_options, *sink).status());
    MESH_ASSIGN_OR_RETURN(layout, OpenDirectory(work->path()));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not a directory (OCI layout) nor a file (tar archive)"));
  }

  absl::StatusOr<std::vector<ImagePlan>> plans;
  struct stat probe;
  if (::fstatat(layout.get(), "manifest.json", &probe, 0) == 0) {
    plans = PlanDocker(layout.get());
  } else if (::fstatat(layout.get(), "oci-layout", &probe, 0) == 0) {
    plans = PlanOci(layout.get());
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(what,
                     ": neither an OCI image layout (no \"oci-layout\") nor a docker save archive "
                     "(no \"manifest.json\")"));
  }
  if (!plans.ok()) return mesh::Annotate(plans.status(), what);
  if (forced.has_value()) {
    if (plans->size() != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": the archive holds ", plans->size(),
                       " images, so one name cannot be given to it; import without a name"));
    }
    (*plans)[0].names = {forced->ToString()};
  }
  absl::StatusOr<std::vector<ImageInfo>> out =
      ImportPlans(layout.get(), what, *std::move(plans), /*steal_names=*/true);
  if (!out.ok() && !absl::StartsWith(out.status().message(), what)) {
    return mesh::Annotate(out.status(), what);
  }
  return out;
}

absl::StatusOr<ImageInfo> ImageStore::EnsureBusybox() {
  const std::string& busybox = options_.busybox_path;
  std::string what = absl::StrCat("build the built-in busybox image from ", Quote(busybox));
  UniqueFd binary(::open(busybox.c_str(), O_RDONLY | O_CLOEXEC));
  if (!binary) {
    int err = errno;
    if (err == ENOENT) {
      return absl::FailedPreconditionError(
          absl::StrCat(what,
                       ": not found; install busybox-static (apt-get install "
                       "busybox-static)"));
    }
    return mesh::ErrnoToStatus(err, what);
  }
  MESH_RETURN_IF_ERROR(mesh::Annotate(CheckStaticElf(binary.get(), busybox), what));
  MESH_ASSIGN_OR_RETURN(std::vector<std::string> applets, ListApplets(busybox));

  MESH_ASSIGN_OR_RETURN(std::string work_path, MakeTempDir(TmpDir(), "busybox-"));
  TempDir work(work_path);
  MESH_ASSIGN_OR_RETURN(UniqueFd work_fd, OpenDirectory(work.path()));
  {
    UniqueFd out(
        ::openat(work_fd.get(), "layer.tar", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!out) return mesh::ErrnoToStatus(errno, absl::StrCat(what, ": create layer.tar"));
    MESH_RETURN_IF_ERROR(mesh::Annotate(WriteBusyboxLayer(binary.get(), applets, out.get()), what));
  }
  MESH_ASSIGN_OR_RETURN(std::string tar,
                        ReadSmall(work_fd.get(), "layer.tar", uint64_t{1} << 30, "busybox layer"));
  ImagePlan plan;
  Digest diff_id = Sha256Of(tar);
  tar.clear();
  plan.config_blob = BusyboxConfig(diff_id, HostPlatform());
  MESH_ASSIGN_OR_RETURN(plan.config, ParseImageConfig(plan.config_blob));
  plan.layers.push_back(LayerPlan{"layer.tar", false, {}, -1, diff_id});
  plan.names = {kBusyboxImageName};
  std::vector<ImagePlan> plans;
  plans.push_back(std::move(plan));
  MESH_ASSIGN_OR_RETURN(std::vector<ImageInfo> out,
                        ImportPlans(work_fd.get(), what, std::move(plans), /*steal_names=*/false));
  return out.at(0);
}

std::vector<ImageInfo> ImageStore::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<ImageInfo> out;
  for (const auto& [hex, rec] : images_) out.push_back(InfoLocked(rec));
  std::sort(out.begin(), out.end(), [](const ImageInfo& a, const ImageInfo& b) {
    if (a.names.empty() != b.names.empty()) return b.names.empty();
    if (!a.names.empty() && a.names[0] != b.names[0]) return a.names[0] < b.names[0];
    return a.id < b.id;
  });
  return out;
}

absl::StatusOr<ImageInfo> ImageStore::Inspect(absl::string_view ref) const {
  absl::MutexLock lock(&mu_);
  MESH_ASSIGN_OR_RETURN(std::string hex, ResolveLocked(ref));
  return InfoLocked(images_.at(hex));
}

absl::StatusOr<std::vector<std::string>> ImageStore::LayerDirs(absl::string_view ref) const {
  MESH_ASSIGN_OR_RETURN(ImageInfo info, Inspect(ref));
  for (const std::string& dir : info.layer_dirs) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::DataLossError(absl::StrCat("image ", Quote(ref), ": layer directory ",
                                              Quote(dir),
                                              " is missing; remove the image and import it "
                                              "again"));
    }
  }
  return info.layer_dirs;
}

absl::Status ImageStore::Tag(absl::string_view ref, absl::string_view name) {
  MESH_ASSIGN_OR_RETURN(Reference parsed, ParseReference(name));
  absl::MutexLock lock(&mu_);
  MESH_ASSIGN_OR_RETURN(std::string hex, ResolveLocked(ref));
  std::map<std::string, std::string> saved = names_;
  names_[parsed.ToString()] = hex;
  absl::Status status = WriteNamesLocked();
  if (!status.ok()) names_ = std::move(saved);
  return mesh::Annotate(status, absl::StrCat("tag image ", Quote(ref), " as ", Quote(name)));
}

absl::StatusOr<bool> ImageStore::Untag(absl::string_view ref) {
  absl::MutexLock lock(&mu_);
  MESH_ASSIGN_OR_RETURN(std::string hex, ResolveLocked(ref));
  absl::StatusOr<Reference> parsed = ParseReference(ref);
  if (!parsed.ok()) return false;
  auto it = names_.find(parsed->ToString());
  if (it == names_.end()) return false;  // an id (ResolveLocked tries names first)
  const auto names = std::count_if(names_.begin(), names_.end(),
                                   [&hex](const auto& name) { return name.second == hex; });
  if (names < 2) return false;
  std::map<std::string, std::string> saved = names_;
  names_.erase(it);
  if (absl::Status status = WriteNamesLocked(); !status.ok()) {
    names_ = std::move(saved);
    return mesh::Annotate(status, absl::StrCat("untag image ", Quote(ref)));
  }
  return true;
}

absl::Status ImageStore::Remove(absl::string_view ref) {
  std::vector<std::string> retired;
  {
    absl::MutexLock lock(&mu_);
    MESH_ASSIGN_OR_RETURN(std::string hex, ResolveLocked(ref));
    const Record& rec = images_.at(hex);
    if (!rec.users.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("image ", Quote(ref), " is used by container",
                       rec.users.size() > 1 ? "s " : " ", absl::StrJoin(rec.users, ", "),
                       ": remove ", rec.users.size() > 1 ? "them" : "it", " first"));
    }
    // Order: the record goes first (the image is gone for good), then its names, then the
    // layers nothing else lists. Open() finishes any of these a crash interrupts.
    if (::unlink(RecordPath(hex).c_str()) != 0 && errno != ENOENT) {
      return mesh::ErrnoToStatus(
          errno, absl::StrCat("remove image ", Quote(ref), ": delete ", Quote(RecordPath(hex))));
    }
    std::vector<std::string> layers;
    for (const LayerRef& l : rec.layers) layers.push_back(l.diff_id.hex);
    images_.erase(hex);
    bool renamed = false;
    for (auto it = names_.begin(); it != names_.end();) {
      if (it->second == hex) {
        it = names_.erase(it);
        renamed = true;
      } else {
        ++it;
      }
    }
    // A failure here leaves names of a missing image in names.json, which Open() drops.
    if (renamed) WriteNamesLocked().IgnoreError();
    retired = RetireLayersLocked(layers);
  }
  DeleteRetired(retired);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ImageStore::AddUser(absl::string_view ref,
                                                absl::string_view container_id) {
  MESH_RETURN_IF_ERROR(ValidateContainerId(container_id));
  absl::MutexLock lock(&mu_);
  MESH_ASSIGN_OR_RETURN(std::string hex, ResolveLocked(ref));
  Record& rec = images_.at(hex);
  std::string id(container_id);
  if (std::find(rec.users.begin(), rec.users.end(), id) != rec.users.end()) {
    return rec.id.ToString();
  }
  Record updated = rec;
  updated.users.push_back(id);
  std::sort(updated.users.begin(), updated.users.end());
  MESH_RETURN_IF_ERROR(mesh::Annotate(
      WriteRecordLocked(updated),
      absl::StrCat("record that container ", Quote(id), " uses image ", Quote(ref))));
  rec = std::move(updated);
  return rec.id.ToString();
}

absl::Status ImageStore::RemoveUser(absl::string_view id, absl::string_view container_id) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::string> hex = ResolveLocked(id);
  if (absl::IsNotFound(hex.status())) return absl::OkStatus();
  if (!hex.ok()) return hex.status();
  Record& rec = images_.at(*hex);
  auto it = std::find(rec.users.begin(), rec.users.end(), container_id);
  if (it == rec.users.end()) return absl::OkStatus();
  Record updated = rec;
  updated.users.erase(updated.users.begin() + (it - rec.users.begin()));
  MESH_RETURN_IF_ERROR(mesh::Annotate(WriteRecordLocked(updated),
                                      absl::StrCat("record that container ", Quote(container_id),
                                                   " no longer uses image ", Quote(id))));
  rec = std::move(updated);
  return absl::OkStatus();
}

}  // namespace mesh::runtime::image
