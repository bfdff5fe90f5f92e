#pragma once

// The fixture of tests that drive the real meshd through its API in the sandbox (meshd_test,
// meshd_dns_test): meshd started per test with a cgroup parent of the binary's own, gRPC
// helpers for networks, containers, exec and groups, and the leak check. The test target
// defines MESHD_PATH and MESH_SHIM_PATH.

#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/wait.h"
#include "gtest/gtest.h"
#include "runtime/container/cgroup_access.h"
#include "tests/support/host_traces.h"
#include "tests/support/meshd_fixture.h"
#include "tests/support/sandbox.h"

namespace mesh::testing {

class MeshdApiTest : public SandboxTest {
 protected:
  // The cgroup parent of this test binary's containers: each binary its own, as ctest may run
  // them side by side.
  explicit MeshdApiTest(std::string cgroup_parent = "mesh-test-meshd")
      : cgroup_parent_(std::move(cgroup_parent)) {}

  void SetUp() override {
    SandboxTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    absl::StatusOr<std::unique_ptr<Meshd>> meshd = Meshd::Start(Options());
    ASSERT_TRUE(meshd.ok()) << meshd.status();
    meshd_ = *std::move(meshd);
  }
  void TearDown() override {
    if (HasFailure() && meshd_ != nullptr) std::cerr << "---- meshd log ----\n" << meshd_->Log();
    meshd_.reset();
    // Containers outlive meshd: their cgroups go here (cgroups are not namespaced, so the
    // sandbox's end would leave them), then the parent meshd made.
    runtime::DestroyCgroupParent(cgroup_parent_).IgnoreError();
    SandboxTest::TearDown();
  }
  MeshdOptions Options() const {
    MeshdOptions options;
    options.meshd_path = MESHD_PATH;
    options.shim_path = MESH_SHIM_PATH;
    options.extra_args = {"--cgroup-parent", cgroup_parent_};
    options.extra_args.insert(options.extra_args.end(), extra_args_.begin(), extra_args_.end());
    return options;
  }
  Meshd& meshd() { return *meshd_; }

  v1::Network CreateNetwork(const std::string& name, const std::string& subnet) {
    v1::CreateNetworkRequest request;
    request.mutable_spec()->set_name(name);
    request.mutable_spec()->set_subnet(subnet);
    v1::Network network;
    grpc::Status status = meshd().networks().Create(Ctx().get(), request, &network);
    EXPECT_TRUE(status.ok()) << StatusText(status);
    return network;
  }

  // A busybox container running `script` with sh -c, on `network`, started.
  v1::ContainerSpec Spec(const std::string& name, const std::string& script,
                         const std::string& network = "front") {
    v1::ContainerSpec spec;
    spec.set_name(name);
    spec.set_image("busybox");
    spec.add_args("sh");
    spec.add_args("-c");
    spec.add_args(script);
    if (!network.empty()) spec.add_networks()->set_network(network);
    return spec;
  }
  grpc::Status Create(const v1::ContainerSpec& spec, v1::Container* out, bool start = true) {
    v1::CreateContainerRequest request;
    *request.mutable_spec() = spec;
    request.set_start(start);
    return meshd().containers().Create(Ctx().get(), request, out);
  }
  v1::Container MustCreate(const v1::ContainerSpec& spec) {
    v1::Container c;
    grpc::Status status = Create(spec, &c);
    EXPECT_TRUE(status.ok()) << StatusText(status);
    return c;
  }
  absl::StatusOr<v1::Container> Get(const std::string& name) {
    v1::GetContainerRequest request;
    request.set_name(name);
    v1::Container c;
    grpc::Status status = meshd().containers().Get(Ctx().get(), request, &c);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    return c;
  }
  // Polls Get until `done` holds (up to `timeout`).
  absl::StatusOr<v1::Container> WaitFor(const std::string& name,
                                        const std::function<bool(const v1::Container&)>& done,
                                        absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    absl::StatusOr<v1::Container> c;
    while (absl::Now() < deadline) {
      c = Get(name);
      if (c.ok() && done(*c)) return c;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("container ", name,
                     " did not get there: ", c.ok() ? c->DebugString() : c.status().ToString()));
  }

  static absl::Status WaitFor_(const std::function<bool()>& done,
                               absl::Duration timeout = absl::Seconds(10)) {
    return mesh::WaitFor(done, timeout, "condition", absl::Milliseconds(20));
  }

  struct ExecResult {
    grpc::Status status;
    std::string out;
    std::string err;
    int code = -1;
  };
  ExecResult Exec(const std::string& name, std::vector<std::string> args,
                  std::optional<std::string> input = std::nullopt, bool tty = false) {
    ExecResult result;
    auto context = Ctx();
    auto stream = meshd().containers().Exec(context.get());
    v1::ExecRequest start;
    start.mutable_start()->set_container(name);
    for (const std::string& a : args) start.mutable_start()->add_args(a);
    start.mutable_start()->set_tty(tty);
    start.mutable_start()->set_stdin(input.has_value());
    stream->Write(start);
    if (input.has_value()) {
      v1::ExecRequest data;
      data.set_stdin(*input);
      stream->Write(data);
      v1::ExecRequest close;
      close.set_close_stdin(true);
      stream->Write(close);
    }
    v1::ExecResponse response;
    while (stream->Read(&response)) {
      if (response.has_stdout()) result.out += response.stdout();
      if (response.has_stderr()) result.err += response.stderr();
      if (response.has_exit()) {
        result.code = response.exit().code();
        stream->WritesDone();
      }
    }
    result.status = stream->Finish();
    return result;
  }

  // Applies `spec`; the member messages, as "name:ACTION".
  std::vector<std::string> Apply(const v1::GroupSpec& spec, v1::Group* done = nullptr) {
    v1::ApplyGroupRequest request;
    *request.mutable_spec() = spec;
    auto context = Ctx(absl::Seconds(120));
    auto reader = meshd().groups().Apply(context.get(), request);
    std::vector<std::string> actions;
    for (v1::ApplyGroupProgress progress; reader->Read(&progress);) {
      if (progress.has_member() && progress.member().action() != v1::MEMBER_ACTION_UNSPECIFIED) {
        actions.push_back(absl::StrCat(progress.member().name(), ":",
                                       v1::MemberAction_Name(progress.member().action())));
      }
      if (progress.has_done() && done != nullptr) *done = progress.done();
    }
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << StatusText(status);
    return actions;
  }
  // What of the kernel and the state dirs mesh may leave behind, for leak checks; once the
  // background deletion of detached veth pairs (and of their cut-off entries) is done.
  std::string Traces() { return MeshTraces(sandbox(), cgroup_parent_); }

  std::string cgroup_parent_;
  std::vector<std::string> extra_args_;  // more of meshd's flags, set in the constructor
  std::unique_ptr<Meshd> meshd_;
};

}  // namespace mesh::testing
