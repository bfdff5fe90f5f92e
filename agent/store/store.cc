#include "agent/store/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/names.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"

namespace mesh::agent {
namespace {

constexpr char kContainers[] = "containers";
constexpr char kNetworks[] = "networks";
constexpr char kGroups[] = "groups";
constexpr char kSuffix[] = ".pb";

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("create store directory ", path));
  }
  return absl::OkStatus();
}

// Reads every record of one kind into `out`.
template <typename Record>
absl::Status LoadKind(const std::string& dir, NameKind kind, std::map<std::string, Record>& out) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (!absl::EndsWith(file, kSuffix)) continue;  // temp files of an interrupted write
    const std::string name = file.substr(0, file.size() - (sizeof(kSuffix) - 1));
    const std::string path = entry.path().string();
    absl::StatusOr<std::string> bytes = ReadFile(path);
    if (!bytes.ok()) return bytes.status();
    Record record;
    if (!ValidateName(kind, name).ok() || !record.ParseFromString(*bytes)) {
      MESH_LOG(Error) << "store: " << path << " is not a valid record; moved aside to " << path
                      << ".corrupt";
      std::filesystem::rename(path, path + ".corrupt", ec);
      continue;
    }
    out.emplace(name, std::move(record));
  }
  if (ec) return mesh::ErrnoToStatus(ec.value(), absl::StrCat("read store directory ", dir));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& dir) {
  MESH_RETURN_IF_ERROR(MakeDir(dir));
  for (const char* kind : {kContainers, kNetworks, kGroups}) {
    MESH_RETURN_IF_ERROR(MakeDir(absl::StrCat(dir, "/", kind)));
  }
  return std::unique_ptr<Store>(new Store(dir));
}

absl::StatusOr<Store::Contents> Store::Load() const {
  Contents contents;
  MESH_RETURN_IF_ERROR(
      LoadKind(absl::StrCat(dir_, "/", kContainers), NameKind::kContainer, contents.containers));
  MESH_RETURN_IF_ERROR(
      LoadKind(absl::StrCat(dir_, "/", kNetworks), NameKind::kNetwork, contents.networks));
  MESH_RETURN_IF_ERROR(
      LoadKind(absl::StrCat(dir_, "/", kGroups), NameKind::kGroup, contents.groups));
  return contents;
}

std::string Store::PathOf(const char* kind, const std::string& name) const {
  return absl::StrCat(dir_, "/", kind, "/", name, kSuffix);
}

absl::Status Store::Write(const char* kind, const std::string& name,
                          const google::protobuf::Message& record) {
  std::string bytes;
  if (!record.SerializeToString(&bytes)) {
    return absl::InternalError(absl::StrCat("store: cannot serialise the record of ", name));
  }
  return WriteFileAtomically(PathOf(kind, name), bytes, 0600);
}

absl::Status Store::Remove(const char* kind, const std::string& name) {
  const std::string path = PathOf(kind, name);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("store: remove ", path));
  }
  // The removal must be as durable as the writes: fsync the directory.
  const std::string parent = absl::StrCat(dir_, "/", kind);
  UniqueFd fd(open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return mesh::ErrnoToStatus(errno, absl::StrCat("store: open ", parent));
  if (fsync(fd.get()) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("store: fsync ", parent));
  }
  return absl::OkStatus();
}

absl::Status Store::Put(const std::string& name, const storev1::ContainerRecord& record) {
  return Write(kContainers, name, record);
}
absl::Status Store::Put(const std::string& name, const storev1::NetworkRecord& record) {
  return Write(kNetworks, name, record);
}
absl::Status Store::Put(const std::string& name, const storev1::GroupRecord& record) {
  return Write(kGroups, name, record);
}
absl::Status Store::DeleteContainer(const std::string& name) { return Remove(kContainers, name); }
absl::Status Store::DeleteNetwork(const std::string& name) { return Remove(kNetworks, name); }
absl::Status Store::DeleteGroup(const std::string& name) { return Remove(kGroups, name); }

}  // namespace mesh::agent
