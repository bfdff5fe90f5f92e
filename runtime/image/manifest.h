#pragma once

// Parsing of the JSON documents of image archives: OCI image layout (oci-layout, index.json,
// image manifests and indexes, image config) and `docker save` (manifest.json). Pure
// functions, no file access: blobs come through a fetch callback.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "runtime/image/digest.h"

namespace mesh::runtime::image {

// Caps on the JSON documents read into memory.
inline constexpr size_t kMaxManifestBytes = 4 << 20;  // index.json, manifests, manifest.json
inline constexpr size_t kMaxConfigBytes = 16 << 20;   // image config
inline constexpr size_t kMaxJsonDepth = 64;
// Layers in one image (Docker's limit; overlayfs allows at most 500 lower directories).
inline constexpr size_t kMaxLayers = 125;

// Parses JSON, refusing documents nested deeper than kMaxJsonDepth (a stack-depth guard).
// InvalidArgument naming `what` on malformed input.
absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text, absl::string_view what);

struct Platform {
  std::string os;            // "linux"
  std::string architecture;  // GOARCH spelling: "amd64", "arm64", ...
  std::string variant;       // "v8", "v7", or ""
  std::string ToString() const;
};
// The platform this binary was built for, in OCI (GOARCH) terms.
Platform HostPlatform();

// OCI content descriptor.
struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
};

struct OciIndex {
  std::vector<Descriptor> manifests;
};

struct OciManifest {
  Descriptor config;
  std::vector<Descriptor> layers;  // bottom layer first
};

// The parts of an image config (OCI image spec, config.md) that mesh keeps. Absent and null
// fields are empty.
struct ImageConfig {
  std::string architecture;
  std::string os;
  std::string created;           // RFC 3339 as written, or ""
  std::string user;              // "uid[:gid]" or names, resolved by the runtime at create time
  std::vector<std::string> env;  // "KEY=VALUE"
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::vector<std::string> exposed_ports;  // "80/tcp", sorted
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  std::vector<Digest> diff_ids;  // rootfs.diff_ids, bottom layer first
};

// One entry of a `docker save` manifest.json. Paths are normalised, relative to the archive.
struct DockerManifestEntry {
  std::string config;
  std::vector<std::string> repo_tags;
  std::vector<std::string> layers;  // bottom layer first
};

bool IsIndexMediaType(absl::string_view media_type);
bool IsManifestMediaType(absl::string_view media_type);
bool IsConfigMediaType(absl::string_view media_type);
bool IsLayerMediaType(absl::string_view media_type);

// "oci-layout": {"imageLayoutVersion": "1.x.y"}.
absl::Status CheckOciLayout(absl::string_view json);
absl::StatusOr<Descriptor> ParseDescriptor(const nlohmann::json& j, absl::string_view what);
absl::StatusOr<OciIndex> ParseOciIndex(absl::string_view json);
// An image manifest (OCI or Docker schema 2). Checks media types, refuses zero or more than
// kMaxLayers layers.
absl::StatusOr<OciManifest> ParseOciManifest(absl::string_view json);
absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view json);
absl::StatusOr<std::vector<DockerManifestEntry>> ParseDockerManifest(absl::string_view json);

// Checks `bytes` against the descriptor's size and digest. InvalidArgument on a mismatch.
absl::Status VerifyBlob(const Descriptor& descriptor, absl::string_view bytes);

// FailedPrecondition unless the config is for `host` (os and architecture).
absl::Status CheckPlatform(const ImageConfig& config, const Platform& host);

// Returns the verified bytes of a blob (size and digest checked against the descriptor).
using BlobFetcher = std::function<absl::StatusOr<std::string>(const Descriptor&)>;

struct ResolvedImage {
  Descriptor descriptor;  // of the image manifest
  OciManifest manifest;
  // Names from the top-level descriptor's annotations: "io.containerd.image.name" if present,
  // else "org.opencontainers.image.ref.name". May be empty.
  std::vector<std::string> names;
};

// Follows an index to the image manifests to import: each top-level manifest (those with a
// platform other than `host` are skipped) and, for each top-level index, the first manifest
// for `host`, recursively. The same manifest listed twice is returned once, names merged.
// FailedPrecondition if nothing is for `host`; errors of `fetch` and the parsers pass through.
absl::StatusOr<std::vector<ResolvedImage>> ResolveOciImages(const OciIndex& index,
                                                            const BlobFetcher& fetch,
                                                            const Platform& host);

}  // namespace mesh::runtime::image
