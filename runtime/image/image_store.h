#pragma once

// The image store: a content-addressed store of unpacked layers and the image records that
// list them, under one directory (normally <state_dir>/images).
//
//   <root>/.lock                      flock held by the open ImageStore
//   <root>/layers/sha256/<diff_id>/   one unpacked layer, overlayfs-ready (whiteouts as 0/0
//                                     character devices, opaque directories as the xattr
//                                     trusted.overlay.opaque=y); never changed once in place
//   <root>/images/<id>.json           one record per image: config blob, layers, users
//   <root>/names.json                 "name:tag" -> image id
//   <root>/tmp/                       work space of imports in progress; emptied by Open()
//
// Imports accept an OCI image layout (a directory, or a tar of one, optionally gzip'd or
// zstd'd) and `docker save` archives. Every entry of every archive passes LayerPolicy
// (layer_rules.h) and is written with confined fd-relative calls (layer_writer.h). A layer is
// unpacked into <root>/tmp and renamed into place only when complete and verified; image
// records are written (atomically) only after all their layers are in place and synced; a
// failed import removes everything it created.
//
// See docs/images.md.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "runtime/image/busybox.h"
#include "runtime/image/digest.h"
#include "runtime/image/layer_rules.h"
#include "runtime/image/manifest.h"

namespace mesh::runtime::image {

struct ImageStoreOptions {
  // Caps applied to each layer (and to an outer archive being unpacked).
  LayerLimits limits;
  // The host's statically linked busybox, for EnsureBusybox().
  std::string busybox_path = kDefaultBusyboxPath;
};

// What Inspect and List return.
struct ImageInfo {
  std::string id;                       // "sha256:<hex of the config blob>"
  std::vector<std::string> names;       // "name:tag", sorted
  std::vector<std::string> diff_ids;    // "sha256:<hex>", bottom layer first (config order)
  std::vector<std::string> layer_dirs;  // absolute, top layer first, duplicates dropped
  ImageConfig config;
  uint64_t size = 0;    // bytes of file content in its distinct layers
  std::string created;  // from the config (RFC 3339), may be empty
  absl::Time imported;
  std::vector<std::string> users;  // container ids using it, sorted
};

class ImageStore {
 public:
  // Opens (creating if needed) the store at `root`. Takes an exclusive flock on <root>/.lock:
  // FailedPrecondition if another ImageStore (in any process) has it open. Recovers from a
  // crash: empties <root>/tmp, drops names of missing images and deletes layers no image
  // record lists.
  static absl::StatusOr<std::unique_ptr<ImageStore>> Open(std::string root,
                                                          ImageStoreOptions options = {});
  ~ImageStore() = default;
  ImageStore(const ImageStore&) = delete;
  ImageStore& operator=(const ImageStore&) = delete;

  // Imports the image(s) in `path`: an OCI image layout directory, or a regular file holding
  // a tar (plain, gzip or zstd) of an OCI layout or a `docker save` output. Names: `name`
  // ("name[:tag]") when given, which requires the archive to hold exactly one image;
  // otherwise the archive's own (RepoTags; io.containerd.image.name or
  // org.opencontainers.image.ref.name), invalid ones skipped. A name already in use moves to
  // the new image. Layers already in the store are reused, not unpacked again. Importing an
  // image that exists only adds names. All or nothing: on error nothing of this import is
  // left in the store. Errors: InvalidArgument for malformed or hostile archives (naming the
  // archive, the layer, the entry and the rule), FailedPrecondition for an image of another
  // platform. Thread-safe; imports run concurrently with each other and with every other call.
  absl::StatusOr<std::vector<ImageInfo>> Import(const std::string& path,
                                                absl::string_view name = "");

  // Makes sure the built-in image exists (see busybox.h) and returns it. Idempotent: the
  // same host busybox always gives the same image id. Tags it "busybox:latest" unless that
  // name belongs to another image (an imported busybox keeps the name; the built-in stays
  // reachable by id). FailedPrecondition if options.busybox_path is missing or dynamic.
  absl::StatusOr<ImageInfo> EnsureBusybox();

  // Every image, sorted by first name, then id (untagged images last).
  std::vector<ImageInfo> List() const;

  // `ref` is a name ("busybox", "app:1.2"; tag defaults to "latest"), an id
  // ("sha256:<hex>" or "<hex>") or a unique prefix of an id's hex. Names win over id
  // prefixes. NotFound if nothing matches; InvalidArgument if a prefix is ambiguous.
  absl::StatusOr<ImageInfo> Inspect(absl::string_view ref) const;

  // The image's layer directories, top layer first, as overlayfs lowerdir wants them
  // (duplicates of a layer keep only the topmost, which is equivalent). DataLoss if a layer
  // directory is missing from disk.
  absl::StatusOr<std::vector<std::string>> LayerDirs(absl::string_view ref) const;

  // Adds `name` ("name[:tag]") to the image `ref`, moving it from any other image.
  absl::Status Tag(absl::string_view ref, absl::string_view name);

  // Removes the name `ref` when it is one of several names of an image, which stays (docker
  // rmi of one of its tags), also while containers use it. False, with nothing changed, when
  // `ref` is an id or the image's only name (then Remove is the way). NotFound as Remove.
  absl::StatusOr<bool> Untag(absl::string_view ref);

  // Removes the image `ref` and all its names, then every layer no other image (and no
  // import in progress) uses. FailedPrecondition naming the containers while any uses it.
  // NotFound if there is no such image.
  absl::Status Remove(absl::string_view ref);

  // Records (persistently) that container `container_id` uses image `ref`, so that Remove
  // refuses to delete it. Returns the image id. Idempotent.
  absl::StatusOr<std::string> AddUser(absl::string_view ref, absl::string_view container_id);
  // Forgets that use. Idempotent: an unknown image or container is success.
  absl::Status RemoveUser(absl::string_view id, absl::string_view container_id);

  const std::string& root() const { return root_; }
  // The directory of the layer with this diff_id (it may not exist).
  std::string LayerDir(const Digest& diff_id) const;

 private:
  struct LayerRef {
    Digest diff_id;
    uint64_t size = 0;
  };
  struct Record {
    Digest id;
    std::string config_blob;
    ImageConfig config;
    std::vector<LayerRef> layers;  // bottom first
    std::vector<std::string> users;
    absl::Time imported;
  };
  // One image of an archive, ready to stage: where its layers are, what they must hash to.
  struct LayerPlan {
    std::string path;  // relative to the layout directory
    bool verify_stored_digest = false;
    Digest stored_digest;  // the blob digest, when verify_stored_digest
    int64_t stored_size = -1;
    Digest diff_id;
  };
  struct ImagePlan {
    std::string config_blob;
    ImageConfig config;
    std::vector<LayerPlan> layers;
    std::vector<std::string> names;
  };
  // What an import has done so far, undone unless committed.
  class Staging;

  ImageStore(std::string root, ImageStoreOptions options, UniqueFd lock)
      : root_(std::move(root)), options_(std::move(options)), lock_(std::move(lock)) {}

  absl::Status Load();
  absl::StatusOr<std::vector<ImagePlan>> PlanOci(int dir_fd) const;
  absl::StatusOr<std::vector<ImagePlan>> PlanDocker(int dir_fd) const;
  absl::StatusOr<std::vector<ImageInfo>> ImportPlans(int dir_fd, const std::string& what,
                                                     std::vector<ImagePlan> plans,
                                                     bool steal_names);
  absl::StatusOr<LayerRef> StageLayer(int dir_fd, const std::string& what, const LayerPlan& layer,
                                      Staging& staging);

  absl::StatusOr<std::string> ResolveLocked(absl::string_view ref) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ImageInfo InfoLocked(const Record& record) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteRecordLocked(const Record& record) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteNamesLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool LayerInUseLocked(const std::string& hex) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves unused layer directories out of sight (into tmp); returns the paths to delete.
  std::vector<std::string> RetireLayersLocked(const std::vector<std::string>& hexes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeleteRetired(const std::vector<std::string>& paths) const;

  std::string RecordPath(const std::string& hex) const;
  std::string NamesPath() const { return root_ + "/names.json"; }
  std::string TmpDir() const { return root_ + "/tmp"; }

  const std::string root_;
  const ImageStoreOptions options_;
  const UniqueFd lock_;

  mutable absl::Mutex mu_;
  std::map<std::string, Record> images_ ABSL_GUARDED_BY(mu_);      // id hex -> record
  std::map<std::string, std::string> names_ ABSL_GUARDED_BY(mu_);  // "name:tag" -> id hex
  std::map<std::string, int> pins_ ABSL_GUARDED_BY(mu_);           // diff_id hex -> imports
  std::map<std::string, uint64_t> layer_sizes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mesh::runtime::image
