#pragma once

// meshd's store (DESIGN.md decision 3): the truth that the kernel is reconciled to.
//
//   <state_dir>/store/containers/<name>.pb   store.v1.ContainerRecord
//   <state_dir>/store/networks/<name>.pb     store.v1.NetworkRecord
//   <state_dir>/store/groups/<name>.pb       store.v1.GroupRecord
//
// One file per object, each replaced atomically (WriteFileAtomically: temp file, fsync,
// rename, fsync of the directory), so a crash at any moment leaves every record either as it
// was or as it became. Writers of one object are serialised by the caller (the controllers
// hold the object's lock); different objects are written concurrently.

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "mesh/store/v1/records.pb.h"

namespace mesh::agent {

namespace storev1 = ::mesh::store::v1;

class Store {
 public:
  // Creates the directories if needed. `dir` is <state_dir>/store.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& dir);

  struct Contents {
    std::map<std::string, storev1::ContainerRecord> containers;
    std::map<std::string, storev1::NetworkRecord> networks;
    std::map<std::string, storev1::GroupRecord> groups;
  };
  // Every record. A file that does not parse (a disk error; atomic writes never leave half a
  // record) is moved aside to <name>.pb.corrupt and reported in the log, not fatal.
  absl::StatusOr<Contents> Load() const;

  absl::Status Put(const std::string& name, const storev1::ContainerRecord& record);
  absl::Status Put(const std::string& name, const storev1::NetworkRecord& record);
  absl::Status Put(const std::string& name, const storev1::GroupRecord& record);
  // OK if there is no such record.
  absl::Status DeleteContainer(const std::string& name);
  absl::Status DeleteNetwork(const std::string& name);
  absl::Status DeleteGroup(const std::string& name);

  const std::string& dir() const { return dir_; }

 private:
  explicit Store(std::string dir) : dir_(std::move(dir)) {}
  absl::Status Write(const char* kind, const std::string& name,
                     const google::protobuf::Message& record);
  absl::Status Remove(const char* kind, const std::string& name);
  std::string PathOf(const char* kind, const std::string& name) const;

  const std::string dir_;
};

}  // namespace mesh::agent
