#pragma once

// The fixture of the runtime's container tests (runtime_container_test, runtime_userns_test,
// runtime_hardening_test): a Runtime in the sandbox over a busybox layer made by hand (the
// image store has its own tests), under a cgroup parent of the test's own. Header-only: it
// needs the test's MESH_SHIM_PATH, and mesh_test_support does not link the runtime.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "base/atomic_file.h"
#include "gtest/gtest.h"
#include "runtime/container/cgroup_access.h"
#include "runtime/container/runtime.h"
#include "tests/support/busybox_layer.h"
#include "tests/support/sandbox.h"

namespace mesh::testing {

class ContainerFixture : public SandboxTest {
 protected:
  // `cgroup_parent`: mesh-test-* (the sandbox sweeps leftovers of that name).
  explicit ContainerFixture(std::string cgroup_parent) : cgroup_parent_(std::move(cgroup_parent)) {}

  void SetUp() override {
    SandboxTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    layer_ = absl::StrCat(Sandbox::kStateDir, "/test-layer");
    ASSERT_TRUE(MakeBusyboxLayer(layer_).ok());
    ASSERT_TRUE(WriteFileAtomically(layer_ + "/etc/image-file", "from the image\n", 0644).ok());
    runtime::RuntimeOptions options;
    options.shim_path = MESH_SHIM_PATH;
    options.cgroup_parent = cgroup_parent_;
    options.layers = [this](const std::string&) -> absl::StatusOr<std::vector<std::string>> {
      return std::vector<std::string>{layer_};
    };
    runtime_ = std::make_unique<runtime::Runtime>(options);
  }

  void TearDown() override {
    // Containers a failed assertion left behind, then the test parent once empty (a
    // concurrent test may still use it: then it stays for the sandbox's sweep).
    if (runtime_ != nullptr) {
      for (const std::string& id : runtime_->List()) {
        runtime_->Delete(id, /*force=*/true).IgnoreError();  // best effort after a failure
      }
    }
    if (auto driver = runtime::HostCgroupDriver(cgroup_parent_); driver.ok()) {
      (*driver)->RemoveParent().IgnoreError();
    }
    SandboxTest::TearDown();
  }

  // A container of the busybox layer running `args`, PATH=/bin.
  runtime::ContainerSpec Spec(const std::string& id, std::vector<std::string> args) {
    runtime::ContainerSpec spec;
    spec.id = id;
    spec.image = "busybox";
    spec.process.args = std::move(args);
    spec.process.env = {"PATH=/bin"};
    return spec;
  }

  // Runs a container to its end; its state.
  runtime::ContainerState Run(const runtime::ContainerSpec& spec,
                              absl::Duration timeout = absl::Seconds(60)) {
    auto created = runtime_->Create(spec);
    EXPECT_TRUE(created.ok()) << created.status();
    if (!created.ok()) return {};
    absl::Status started = runtime_->Start(spec.id);
    EXPECT_TRUE(started.ok()) << started;
    auto done = runtime_->Wait(spec.id, timeout);
    EXPECT_TRUE(done.ok()) << done.status();
    return done.ok() ? *done : runtime::ContainerState{};
  }

  // stdout of a container, from its log.
  std::string Output(const std::string& id) {
    auto text = ReadFile(runtime_->PathsOf(id).log());
    std::string out;
    if (!text.ok()) return out;
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
      size_t pos = line.find(" stdout F ");
      if (pos != absl::string_view::npos) absl::StrAppend(&out, line.substr(pos + 10), "\n");
    }
    return out;
  }

  const std::string cgroup_parent_;
  std::string layer_;
  std::unique_ptr<runtime::Runtime> runtime_;
};

}  // namespace mesh::testing
