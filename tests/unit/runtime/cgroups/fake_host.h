#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "gtest/gtest.h"
#include "runtime/cgroups/cgroup.h"
#include "runtime/cgroups/testing/fake_cgroup_fs.h"

namespace mesh::runtime {

// A fake host and the driver DetectCgroupDriver picks on it:
//   kV1: this project's CI machines: v1 hierarchies (cpu, cpuacct, cpuset, memory, freezer,
//        pids, devices) and a cgroup2 mount that offers only hugetlb, so detection must pick v1;
//   kV2: a pure cgroup v2 host.
struct FakeHost {
  std::shared_ptr<FakeCgroupFs> fs;
  std::unique_ptr<CgroupDriver> driver;
};

inline absl::StatusOr<FakeHost> MakeFakeHost(CgroupVersion version,
                                             FakeV1Options v1 = FakeV1Options(),
                                             FakeV2Options v2 = FakeV2Options(),
                                             absl::Duration timeout = absl::Seconds(2)) {
  FakeHost host;
  MESH_ASSIGN_OR_RETURN(host.fs, FakeCgroupFs::Create());
  if (version == CgroupVersion::kV1) {
    MESH_RETURN_IF_ERROR(host.fs->AddStandardV1Hierarchies(v1));
    FakeV2Options hybrid;
    hybrid.controllers = {"hugetlb"};
    MESH_RETURN_IF_ERROR(host.fs->AddV2Hierarchy("unified", hybrid).status());
  } else {
    MESH_RETURN_IF_ERROR(host.fs->AddV2Hierarchy("cgroup2", v2).status());
  }
  CgroupDriverOptions options;
  options.parent = "mesh";
  options.timeout = timeout;
  options.fs = host.fs;
  MESH_ASSIGN_OR_RETURN(host.driver, DetectCgroupDriver(host.fs->Layout(), options));
  if (host.driver->version() != version) {
    return absl::InternalError("fake host: detection picked the wrong driver");
  }
  return host;
}

// The value of `result`; fails the current test (and returns T{}) when it is an error.
template <typename T>
T Must(absl::StatusOr<T> result) {
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *std::move(result) : T{};
}

inline std::string FileIn(const std::string& dir, const std::string& file) {
  return dir + "/" + file;
}

}  // namespace mesh::runtime
