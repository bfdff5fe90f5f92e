#include "runtime/image/manifest.h"

#include <algorithm>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "runtime/image/layer_rules.h"

namespace mesh::runtime::image {
namespace {

using json = nlohmann::json;

constexpr absl::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr absl::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr absl::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr absl::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
constexpr absl::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";
constexpr absl::string_view kContainerdNameAnnotation = "io.containerd.image.name";
constexpr int kMaxIndexNesting = 4;

absl::Status Malformed(absl::string_view what, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(what, " is malformed: ", why));
}

absl::Status NoNul(absl::string_view s, absl::string_view what) {
  if (s.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, " holds a NUL byte"));
  }
  return absl::OkStatus();
}

// Optional string field: absent or null gives "".
absl::StatusOr<std::string> StringField(const json& obj, const char* key, absl::string_view what) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Malformed(what, absl::StrCat("\"", key, "\" must be a string"));
  std::string value = it->get<std::string>();
  MESH_RETURN_IF_ERROR(NoNul(value, absl::StrCat(what, " field \"", key, "\"")));
  return value;
}

// Optional array of strings: absent or null gives {}.
absl::StatusOr<std::vector<std::string>> StringList(const json& obj, const char* key,
                                                    absl::string_view what) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) {
    return Malformed(what, absl::StrCat("\"", key, "\" must be an array of strings"));
  }
  for (const json& item : *it) {
    if (!item.is_string()) {
      return Malformed(what, absl::StrCat("\"", key, "\" must be an array of strings"));
    }
    out.push_back(item.get<std::string>());
    MESH_RETURN_IF_ERROR(NoNul(out.back(), absl::StrCat(what, " field \"", key, "\"")));
  }
  return out;
}

bool Matches(const Platform& p, const Platform& host) {
  return p.os == host.os && p.architecture == host.architecture &&
         (host.variant.empty() || p.variant.empty() || p.variant == host.variant);
}

std::vector<std::string> NamesOf(const Descriptor& d) {
  auto it = d.annotations.find(std::string(kContainerdNameAnnotation));
  if (it != d.annotations.end() && !it->second.empty()) return {it->second};
  it = d.annotations.find(std::string(kRefNameAnnotation));
  if (it != d.annotations.end() && !it->second.empty()) return {it->second};
  return {};
}

// The media type of a descriptor, or, when the descriptor omits it, of the document itself.
absl::StatusOr<std::string> KindOf(const Descriptor& d, const std::string& blob) {
  if (!d.media_type.empty()) return d.media_type;
  MESH_ASSIGN_OR_RETURN(json j, ParseJson(blob, absl::StrCat("blob ", d.digest.ToString())));
  if (!j.is_object()) return Malformed(absl::StrCat("blob ", d.digest.ToString()), "not an object");
  if (auto it = j.find("mediaType"); it != j.end() && it->is_string()) {
    return it->get<std::string>();
  }
  if (j.contains("manifests")) return std::string(kOciIndex);
  return std::string(kOciManifest);
}

absl::Status Resolve(const Descriptor& d, const std::vector<std::string>& names,
                     const BlobFetcher& fetch, const Platform& host, int nesting, bool top,
                     std::vector<ResolvedImage>* out, std::vector<std::string>* skipped) {
  if (nesting > kMaxIndexNesting) {
    return absl::InvalidArgumentError(
        absl::StrCat("image index nests deeper than ", kMaxIndexNesting, " levels"));
  }
  if (d.platform.has_value() && !Matches(*d.platform, host)) {
    skipped->push_back(d.platform->ToString());
    return absl::OkStatus();
  }
  if (!d.media_type.empty() && !IsIndexMediaType(d.media_type) &&
      !IsManifestMediaType(d.media_type)) {
    if (top) {
      return absl::InvalidArgumentError(absl::StrCat("index entry ", d.digest.ToString(),
                                                     " has media type \"", d.media_type,
                                                     "\", which is not an image"));
    }
    skipped->push_back(absl::StrCat("\"", d.media_type, "\""));
    return absl::OkStatus();
  }
  MESH_ASSIGN_OR_RETURN(std::string blob, fetch(d));
  MESH_ASSIGN_OR_RETURN(std::string kind, KindOf(d, blob));
  if (IsIndexMediaType(kind)) {
    MESH_ASSIGN_OR_RETURN(OciIndex nested, ParseOciIndex(blob));
    size_t before = out->size();
    for (const Descriptor& child : nested.manifests) {
      std::vector<std::string> child_skipped;
      MESH_RETURN_IF_ERROR(
          Resolve(child, names, fetch, host, nesting + 1, false, out, &child_skipped));
      if (out->size() > before) return absl::OkStatus();  // the first match wins
      skipped->insert(skipped->end(), child_skipped.begin(), child_skipped.end());
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "image index ", d.digest.ToString(), " has no image for ", host.ToString(),
        skipped->empty() ? "" : absl::StrCat(" (it has: ", absl::StrJoin(*skipped, ", "), ")")));
  }
  if (!IsManifestMediaType(kind)) {
    return absl::InvalidArgumentError(absl::StrCat("blob ", d.digest.ToString(),
                                                   " has media type \"", kind,
                                                   "\", which is not an image manifest"));
  }
  MESH_ASSIGN_OR_RETURN(OciManifest manifest, ParseOciManifest(blob));
  for (ResolvedImage& seen : *out) {
    if (seen.descriptor.digest == d.digest) {
      for (const std::string& n : names) {
        if (std::find(seen.names.begin(), seen.names.end(), n) == seen.names.end()) {
          seen.names.push_back(n);
        }
      }
      return absl::OkStatus();
    }
  }
  out->push_back(ResolvedImage{d, std::move(manifest), names});
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<json> ParseJson(absl::string_view text, absl::string_view what) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        return Malformed(what, absl::StrCat("nested deeper than ", kMaxJsonDepth, " levels"));
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Malformed(what, "not valid JSON");
  return j;
}

std::string Platform::ToString() const {
  return variant.empty() ? absl::StrCat(os, "/", architecture)
                         : absl::StrCat(os, "/", architecture, "/", variant);
}

Platform HostPlatform() {
#if defined(__x86_64__)
  return {"linux", "amd64", ""};
#elif defined(__aarch64__)
  return {"linux", "arm64", "v8"};
#elif defined(__arm__)
  return {"linux", "arm", "v7"};
#elif defined(__i386__)
  return {"linux", "386", ""};
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return {"linux", "ppc64le", ""};
#elif defined(__s390x__)
  return {"linux", "s390x", ""};
#elif defined(__riscv) && __riscv_xlen == 64
  return {"linux", "riscv64", ""};
#else
#error "unknown architecture: add its GOARCH name to HostPlatform()"
#endif
}

bool IsIndexMediaType(absl::string_view t) { return t == kOciIndex || t == kDockerList; }
bool IsManifestMediaType(absl::string_view t) { return t == kOciManifest || t == kDockerManifest; }
bool IsConfigMediaType(absl::string_view t) {
  return t == "application/vnd.oci.image.config.v1+json" ||
         t == "application/vnd.docker.container.image.v1+json";
}
bool IsLayerMediaType(absl::string_view t) {
  static constexpr absl::string_view kTypes[] = {
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.oci.image.layer.v1.tar+zstd",
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.diff.tar",
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  };
  return std::find(std::begin(kTypes), std::end(kTypes), t) != std::end(kTypes);
}

absl::Status CheckOciLayout(absl::string_view text) {
  MESH_ASSIGN_OR_RETURN(json j, ParseJson(text, "oci-layout"));
  if (!j.is_object()) return Malformed("oci-layout", "not a JSON object");
  MESH_ASSIGN_OR_RETURN(std::string version, StringField(j, "imageLayoutVersion", "oci-layout"));
  if (!absl::StartsWith(version, "1.")) {
    return absl::InvalidArgumentError(absl::StrCat("oci-layout: imageLayoutVersion \"",
                                                   absl::CHexEscape(version.substr(0, 40)),
                                                   "\" is not supported (mesh reads version 1.x)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Descriptor> ParseDescriptor(const json& j, absl::string_view what) {
  if (!j.is_object()) return Malformed(what, "descriptor is not an object");
  Descriptor d;
  MESH_ASSIGN_OR_RETURN(d.media_type, StringField(j, "mediaType", what));
  MESH_ASSIGN_OR_RETURN(std::string digest, StringField(j, "digest", what));
  absl::StatusOr<Digest> parsed = ParseDigest(digest);
  if (!parsed.ok()) return Malformed(what, parsed.status().message());
  d.digest = *parsed;
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0) {
    return Malformed(what, "descriptor \"size\" must be a non-negative integer");
  }
  d.size = size->get<int64_t>();
  if (auto a = j.find("annotations"); a != j.end() && !a->is_null()) {
    if (!a->is_object()) return Malformed(what, "\"annotations\" must be an object");
    for (auto it = a->begin(); it != a->end(); ++it) {
      if (it.value().is_string()) d.annotations[it.key()] = it.value().get<std::string>();
    }
  }
  if (auto p = j.find("platform"); p != j.end() && !p->is_null()) {
    if (!p->is_object()) return Malformed(what, "\"platform\" must be an object");
    Platform platform;
    MESH_ASSIGN_OR_RETURN(platform.os, StringField(*p, "os", what));
    MESH_ASSIGN_OR_RETURN(platform.architecture, StringField(*p, "architecture", what));
    MESH_ASSIGN_OR_RETURN(platform.variant, StringField(*p, "variant", what));
    d.platform = platform;
  }
  return d;
}

absl::StatusOr<OciIndex> ParseOciIndex(absl::string_view text) {
  MESH_ASSIGN_OR_RETURN(json j, ParseJson(text, "image index"));
  if (!j.is_object()) return Malformed("image index", "not a JSON object");
  auto version = j.find("schemaVersion");
  if (version == j.end() || !version->is_number_integer() || version->get<int64_t>() != 2) {
    return Malformed("image index", "\"schemaVersion\" must be 2");
  }
  auto manifests = j.find("manifests");
  if (manifests == j.end() || !manifests->is_array()) {
    return Malformed("image index", "\"manifests\" must be an array");
  }
  OciIndex index;
  for (const json& m : *manifests) {
    MESH_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(m, "image index entry"));
    index.manifests.push_back(std::move(d));
  }
  if (index.manifests.empty()) return Malformed("image index", "it lists no manifests");
  return index;
}

absl::StatusOr<OciManifest> ParseOciManifest(absl::string_view text) {
  MESH_ASSIGN_OR_RETURN(json j, ParseJson(text, "image manifest"));
  if (!j.is_object()) return Malformed("image manifest", "not a JSON object");
  auto version = j.find("schemaVersion");
  if (version == j.end() || !version->is_number_integer() || version->get<int64_t>() != 2) {
    return Malformed("image manifest", "\"schemaVersion\" must be 2");
  }
  MESH_ASSIGN_OR_RETURN(std::string media_type, StringField(j, "mediaType", "image manifest"));
  if (!media_type.empty() && !IsManifestMediaType(media_type)) {
    return Malformed("image manifest",
                     absl::StrCat("media type \"", media_type, "\" is not an image manifest"));
  }
  auto config = j.find("config");
  if (config == j.end()) return Malformed("image manifest", "no \"config\"");
  OciManifest m;
  MESH_ASSIGN_OR_RETURN(m.config, ParseDescriptor(*config, "image manifest config"));
  if (!IsConfigMediaType(m.config.media_type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("image manifest: config media type \"", m.config.media_type,
                     "\" is not a container image config (is this an artifact?)"));
  }
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array()) {
    return Malformed("image manifest", "\"layers\" must be an array");
  }
  for (const json& l : *layers) {
    MESH_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(l, "image manifest layer"));
    if (!IsLayerMediaType(d.media_type)) {
      return absl::InvalidArgumentError(
          absl::StrCat("image manifest: layer ", d.digest.ToString(), " has media type \"",
                       d.media_type, "\"; mesh reads tar layers, plain, gzip or zstd"));
    }
    m.layers.push_back(std::move(d));
  }
  if (m.layers.empty()) {
    return absl::InvalidArgumentError(
        "image manifest lists no layers: an image without files has nothing to run");
  }
  if (m.layers.size() > kMaxLayers) {
    return absl::InvalidArgumentError(absl::StrCat("image manifest lists ", m.layers.size(),
                                                   " layers; mesh allows at most ", kMaxLayers));
  }
  return m;
}

absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view text) {
  constexpr absl::string_view kWhat = "image config";
  MESH_ASSIGN_OR_RETURN(json j, ParseJson(text, kWhat));
  if (!j.is_object()) return Malformed(kWhat, "not a JSON object");
  ImageConfig c;
  MESH_ASSIGN_OR_RETURN(c.architecture, StringField(j, "architecture", kWhat));
  MESH_ASSIGN_OR_RETURN(c.os, StringField(j, "os", kWhat));
  MESH_ASSIGN_OR_RETURN(c.created, StringField(j, "created", kWhat));
  if (c.os.empty() || c.architecture.empty()) {
    return Malformed(kWhat, "\"os\" and \"architecture\" are required");
  }
  if (auto cfg = j.find("config"); cfg != j.end() && !cfg->is_null()) {
    if (!cfg->is_object()) return Malformed(kWhat, "\"config\" must be an object");
    MESH_ASSIGN_OR_RETURN(c.user, StringField(*cfg, "User", kWhat));
    MESH_ASSIGN_OR_RETURN(c.env, StringList(*cfg, "Env", kWhat));
    MESH_ASSIGN_OR_RETURN(c.entrypoint, StringList(*cfg, "Entrypoint", kWhat));
    MESH_ASSIGN_OR_RETURN(c.cmd, StringList(*cfg, "Cmd", kWhat));
    MESH_ASSIGN_OR_RETURN(c.working_dir, StringField(*cfg, "WorkingDir", kWhat));
    MESH_ASSIGN_OR_RETURN(c.stop_signal, StringField(*cfg, "StopSignal", kWhat));
    if (auto ports = cfg->find("ExposedPorts"); ports != cfg->end() && !ports->is_null()) {
      if (!ports->is_object()) return Malformed(kWhat, "\"ExposedPorts\" must be an object");
      for (auto it = ports->begin(); it != ports->end(); ++it) {
        MESH_RETURN_IF_ERROR(NoNul(it.key(), "image config exposed port"));
        c.exposed_ports.push_back(it.key());
      }
      std::sort(c.exposed_ports.begin(), c.exposed_ports.end());
    }
    if (auto labels = cfg->find("Labels"); labels != cfg->end() && !labels->is_null()) {
      if (!labels->is_object()) return Malformed(kWhat, "\"Labels\" must be an object");
      for (auto it = labels->begin(); it != labels->end(); ++it) {
        if (!it.value().is_string()) return Malformed(kWhat, "label values must be strings");
        c.labels[it.key()] = it.value().get<std::string>();
      }
    }
  }
  auto rootfs = j.find("rootfs");
  if (rootfs == j.end() || !rootfs->is_object()) {
    return Malformed(kWhat, "\"rootfs\" must be an object");
  }
  MESH_ASSIGN_OR_RETURN(std::string type, StringField(*rootfs, "type", kWhat));
  if (type != "layers") return Malformed(kWhat, "\"rootfs.type\" must be \"layers\"");
  MESH_ASSIGN_OR_RETURN(std::vector<std::string> diff_ids, StringList(*rootfs, "diff_ids", kWhat));
  for (const std::string& d : diff_ids) {
    absl::StatusOr<Digest> digest = ParseDigest(d);
    if (!digest.ok()) return Malformed(kWhat, digest.status().message());
    c.diff_ids.push_back(*digest);
  }
  return c;
}

absl::StatusOr<std::vector<DockerManifestEntry>> ParseDockerManifest(absl::string_view text) {
  constexpr absl::string_view kWhat = "manifest.json";
  MESH_ASSIGN_OR_RETURN(json j, ParseJson(text, kWhat));
  if (!j.is_array()) return Malformed(kWhat, "not a JSON array");
  std::vector<DockerManifestEntry> out;
  for (const json& item : j) {
    if (!item.is_object()) return Malformed(kWhat, "entries must be objects");
    DockerManifestEntry e;
    MESH_ASSIGN_OR_RETURN(std::string config, StringField(item, "Config", kWhat));
    if (config.empty()) return Malformed(kWhat, "an entry has no \"Config\"");
    MESH_ASSIGN_OR_RETURN(e.config, NormalizeEntryPath(config, "manifest.json Config path"));
    MESH_ASSIGN_OR_RETURN(e.repo_tags, StringList(item, "RepoTags", kWhat));
    MESH_ASSIGN_OR_RETURN(std::vector<std::string> layers, StringList(item, "Layers", kWhat));
    for (const std::string& l : layers) {
      MESH_ASSIGN_OR_RETURN(std::string path, NormalizeEntryPath(l, "manifest.json layer path"));
      e.layers.push_back(std::move(path));
    }
    if (e.layers.empty()) {
      return absl::InvalidArgumentError(
          "manifest.json: an image lists no layers: an image without files has nothing to run");
    }
    if (e.layers.size() > kMaxLayers) {
      return absl::InvalidArgumentError(absl::StrCat("manifest.json: an image lists ",
                                                     e.layers.size(),
                                                     " layers; mesh allows at most ", kMaxLayers));
    }
    out.push_back(std::move(e));
  }
  if (out.empty()) return Malformed(kWhat, "it lists no images");
  return out;
}

absl::Status VerifyBlob(const Descriptor& d, absl::string_view bytes) {
  if (static_cast<int64_t>(bytes.size()) != d.size) {
    return absl::InvalidArgumentError(absl::StrCat("blob ", d.digest.ToString(), " has ",
                                                   bytes.size(), " bytes, its descriptor says ",
                                                   d.size));
  }
  Digest actual = Sha256Of(bytes);
  if (actual != d.digest) {
    return absl::InvalidArgumentError(absl::StrCat("blob ", d.digest.ToString(),
                                                   " does not match its digest (content hashes to ",
                                                   actual.ToString(), "): the archive is corrupt"));
  }
  return absl::OkStatus();
}

absl::Status CheckPlatform(const ImageConfig& config, const Platform& host) {
  if (config.os != host.os || config.architecture != host.architecture) {
    return absl::FailedPreconditionError(
        absl::StrCat("image is for ", config.os, "/", config.architecture, ", this host runs ",
                     host.os, "/", host.architecture, ": import an image for this platform"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ResolvedImage>> ResolveOciImages(const OciIndex& index,
                                                            const BlobFetcher& fetch,
                                                            const Platform& host) {
  std::vector<ResolvedImage> out;
  std::vector<std::string> skipped;
  for (const Descriptor& d : index.manifests) {
    MESH_RETURN_IF_ERROR(Resolve(d, NamesOf(d), fetch, host, 0, true, &out, &skipped));
  }
  if (out.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the archive has no image for ", host.ToString(),
        skipped.empty() ? "" : absl::StrCat(" (it has: ", absl::StrJoin(skipped, ", "), ")")));
  }
  return out;
}

}  // namespace mesh::runtime::image
