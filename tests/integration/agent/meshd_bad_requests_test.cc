// TESTING.md #19, the API part: a table of malformed requests to the real meshd in the sandbox.
// Each row is one call to one RPC with one thing wrong; it must get exactly the code the row
// names (INVALID_ARGUMENT for malformed input, NOT_FOUND / ALREADY_EXISTS for references,
// FAILED_PRECONDITION for what is not possible now, RESOURCE_EXHAUSTED for what is too big)
// and a message naming the field and/or the object. After every row: meshd is alive, mesh's
// traces in the kernel and its dirs are unchanged, and so is everything the API lists. After
// all of them: the whole host snapshot is unchanged and a valid create and remove still work.
// The log ends with a one-line summary of the whole table. (The YAML half of #19 belongs to
// meshctl's spec loader.)
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/container/cgroup_access.h"
#include "tests/support/host_snapshot.h"
#include "tests/support/host_traces.h"
#include "tests/support/meshd_fixture.h"
#include "tests/support/sandbox.h"

namespace mesh::testing {
namespace {

using Code = grpc::StatusCode;

constexpr char kCgroupParent[] = "mesh-test-bad-requests";

std::string CodeName(Code code) {
  switch (code) {
    case Code::OK:
      return "OK";
    case Code::CANCELLED:
      return "CANCELLED";
    case Code::UNKNOWN:
      return "UNKNOWN";
    case Code::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case Code::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case Code::NOT_FOUND:
      return "NOT_FOUND";
    case Code::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case Code::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case Code::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case Code::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case Code::INTERNAL:
      return "INTERNAL";
    case Code::UNAVAILABLE:
      return "UNAVAILABLE";
    default:
      return absl::StrCat("code ", static_cast<int>(code));
  }
}

google::protobuf::Duration D(int64_t seconds, int32_t nanos = 0) {
  google::protobuf::Duration d;
  d.set_seconds(seconds);
  d.set_nanos(nanos);
  return d;
}

google::protobuf::Timestamp T(int64_t seconds, int32_t nanos = 0) {
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  t.set_nanos(nanos);
  return t;
}

// Appends `n` copies of `value`.
void Fill(google::protobuf::RepeatedPtrField<std::string>* field, int n, absl::string_view value) {
  for (int i = 0; i < n; ++i) field->Add(std::string(value));
}

// A name that is not one, what is wrong with it as base/names.cc says it.
struct BadName {
  std::string label;
  std::string name;
  std::string says;
};

std::vector<BadName> BadNames() {
  return {
      {"empty", "", "must not be empty"},
      {"4 KiB", std::string(4096, 'a'), "4096 characters long"},
      {"64 characters", std::string(64, 'a'), "64 characters long"},
      {"uppercase", "Web", "uppercase 'W'"},
      {"slash", "a/b", "'/' at position 2"},
      {"dot-dot", "..", "path component"},
      {"dot", ".", "path component"},
      {"NUL", std::string("a\0b", 3), "a NUL byte at position 2"},
      {"leading dash", "-web", "must not start with '-'"},
      {"trailing dash", "web-", "must not end with '-'"},
      {"underscore", "web_1", "'_' at position 4"},
      {"dot inside", "web.1", "'.' at position 4"},
      {"space", "web 1", "a space at position 4"},
      {"traversal", "../../etc", "'.' at position 1"},
      {"newline", "web\n", "byte 0x0a at position 4"},
      {"non-ASCII",
       "w\xc3\xa9"
       "b",
       "byte 0xc3 at position 2"},
  };
}

// One malformed request: the call, the code it must get and what its message must contain.
struct Row {
  std::string category;  // the RPC family, for the tally
  std::string what;      // what is wrong
  std::function<grpc::Status()> call;
  Code code;
  std::vector<std::string> mentions;
};

class MeshdBadRequestsTest : public SandboxTest {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    MeshdOptions options;
    options.meshd_path = MESHD_PATH;
    options.shim_path = MESH_SHIM_PATH;
    options.extra_args = {"--cgroup-parent", kCgroupParent};
    absl::StatusOr<std::unique_ptr<Meshd>> meshd = Meshd::Start(options);
    ASSERT_TRUE(meshd.ok()) << meshd.status();
    meshd_ = *std::move(meshd);
  }
  void TearDown() override {
    if (HasFailure() && meshd_ != nullptr) std::cerr << "---- meshd log ----\n" << meshd_->Log();
    meshd_.reset();
    // Containers outlive meshd: their cgroups go here (cgroups are not namespaced, so the
    // sandbox's end would leave them), then the parent meshd made.
    runtime::DestroyCgroupParent(kCgroupParent).IgnoreError();
    SandboxTest::TearDown();
  }
  Meshd& meshd() { return *meshd_; }
  std::string Traces() { return MeshTraces(sandbox(), kCgroupParent); }

  // The whole host snapshot (host_snapshot.h) once the kernel is done with what was just made:
  // IPv6 duplicate address detection over (no "tentative" address) and bridges in their final
  // operational state (the same snapshot twice, 500 ms apart); up to 15 s.
  absl::StatusOr<std::string> SettledHostSnapshot() {
    absl::StatusOr<std::string> last = TakeHostSnapshot();
    for (int i = 0; i < 30 && last.ok(); ++i) {
      absl::SleepFor(absl::Milliseconds(500));
      absl::StatusOr<std::string> now = TakeHostSnapshot();
      if (!now.ok()) return now;
      const bool settled = *now == *last && !absl::StrContains(*now, "tentative");
      last = std::move(now);
      if (settled) break;
    }
    return last;
  }

  // Everything the API lists: containers (all), networks, groups, images.
  std::string ApiState() {
    std::string out;
    v1::ListContainersRequest all;
    all.set_all(true);
    v1::ListContainersResponse containers;
    grpc::Status status = meshd().containers().List(Ctx().get(), all, &containers);
    absl::StrAppend(&out, "containers: ", StatusText(status), "\n");
    for (const v1::Container& c : containers.containers()) {
      absl::StrAppend(&out, c.ShortDebugString(), "\n");
    }
    v1::ListNetworksResponse networks;
    status = meshd().networks().List(Ctx().get(), v1::ListNetworksRequest(), &networks);
    absl::StrAppend(&out, "networks: ", StatusText(status), "\n");
    for (const v1::Network& n : networks.networks())
      absl::StrAppend(&out, n.ShortDebugString(), "\n");
    v1::ListGroupsResponse groups;
    status = meshd().groups().List(Ctx().get(), v1::ListGroupsRequest(), &groups);
    absl::StrAppend(&out, "groups: ", StatusText(status), "\n");
    for (const v1::Group& g : groups.groups()) absl::StrAppend(&out, g.ShortDebugString(), "\n");
    v1::ListImagesResponse images;
    status = meshd().images().List(Ctx().get(), v1::ListImagesRequest(), &images);
    absl::StrAppend(&out, "images: ", StatusText(status), "\n");
    for (const v1::Image& i : images.images()) absl::StrAppend(&out, i.ShortDebugString(), "\n");
    return out;
  }

  // The calls, each returning the call's status only.
  grpc::Status CreateContainer(const v1::ContainerSpec& spec, bool start = false) {
    v1::CreateContainerRequest request;
    *request.mutable_spec() = spec;
    request.set_start(start);
    v1::Container c;
    return meshd().containers().Create(Ctx().get(), request, &c);
  }
  grpc::Status CreateNetwork(const v1::NetworkSpec& spec) {
    v1::CreateNetworkRequest request;
    *request.mutable_spec() = spec;
    v1::Network n;
    return meshd().networks().Create(Ctx().get(), request, &n);
  }
  grpc::Status Apply(const v1::GroupSpec& spec) {
    v1::ApplyGroupRequest request;
    *request.mutable_spec() = spec;
    auto context = Ctx(absl::Seconds(120));
    auto reader = meshd().groups().Apply(context.get(), request);
    for (v1::ApplyGroupProgress progress; reader->Read(&progress);) {
    }
    return reader->Finish();
  }
  grpc::Status Logs(const v1::LogsRequest& request) {
    auto context = Ctx();
    auto reader = meshd().containers().Logs(context.get(), request);
    for (v1::LogEntry entry; reader->Read(&entry);) {
    }
    return reader->Finish();
  }
  grpc::Status Exec(const std::vector<v1::ExecRequest>& requests) {
    auto context = Ctx();
    auto stream = meshd().containers().Exec(context.get());
    for (const v1::ExecRequest& r : requests) {
      if (!stream->Write(r)) break;  // refused already: Finish says why
    }
    stream->WritesDone();
    for (v1::ExecResponse response; stream->Read(&response);) {
    }
    return stream->Finish();
  }
  grpc::Status Import(const std::vector<v1::ImportImageRequest>& requests) {
    auto context = Ctx();
    v1::ImportImageResponse response;
    auto writer = meshd().images().Import(context.get(), &response);
    for (const v1::ImportImageRequest& r : requests) {
      if (!writer->Write(r)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  std::unique_ptr<Meshd> meshd_;
};

// A valid container spec; rows change one thing of it.
v1::ContainerSpec ValidContainer() {
  v1::ContainerSpec spec;
  spec.set_name("x");
  spec.set_image("busybox");
  spec.add_args("true");
  spec.add_networks()->set_network("front");
  return spec;
}

// A valid network spec (its subnet overlaps nothing); rows change one thing of it.
v1::NetworkSpec ValidNetwork() {
  v1::NetworkSpec spec;
  spec.set_name("n1");
  spec.set_subnet("10.88.3.0/24");
  return spec;
}

// A valid group: one network, two containers, b waiting for a.
v1::GroupSpec ValidGroup() {
  v1::GroupSpec spec;
  spec.set_name("g");
  v1::NetworkSpec* net = spec.add_networks();
  net->set_name("net");
  net->set_subnet("10.88.4.0/24");
  for (const char* name : {"a", "b"}) {
    v1::GroupContainer* member = spec.add_containers();
    member->mutable_spec()->set_name(name);
    member->mutable_spec()->set_image("busybox");
    member->mutable_spec()->add_args("true");
    member->mutable_spec()->add_networks()->set_network("net");
  }
  spec.mutable_containers(1)->add_depends_on()->set_container("a");
  return spec;
}

TEST_F(MeshdBadRequestsTest, MalformedRequestsGetTheirCodeNameTheFieldAndChangeNothing) {
  // The world the rows run against: two networks; "web" running on front with a static address
  // and a published port; "idle" created, never started; "web-sidecar" sharing web's network.
  for (const auto& [name, subnet] : std::vector<std::pair<std::string, std::string>>{
           {"front", "10.88.1.0/24"}, {"pod-net", "10.88.2.0/24"}}) {
    v1::NetworkSpec spec;
    spec.set_name(name);
    spec.set_subnet(subnet);
    grpc::Status status = CreateNetwork(spec);
    ASSERT_TRUE(status.ok()) << StatusText(status);
  }
  {
    v1::ContainerSpec web = ValidContainer();
    web.set_name("web");
    web.clear_args();
    web.add_args("sleep");
    web.add_args("100000");
    web.mutable_networks(0)->set_ip("10.88.1.10");
    v1::PortMapping* port = web.add_ports();
    port->set_host_port(8080);
    port->set_container_port(80);
    grpc::Status status = CreateContainer(web, /*start=*/true);
    ASSERT_TRUE(status.ok()) << StatusText(status);
    v1::ContainerSpec idle = ValidContainer();
    idle.set_name("idle");
    status = CreateContainer(idle);
    ASSERT_TRUE(status.ok()) << StatusText(status);
    v1::ContainerSpec sidecar = ValidContainer();
    sidecar.set_name("web-sidecar");
    sidecar.clear_networks();
    sidecar.set_network_from("web");
    status = CreateContainer(sidecar);
    ASSERT_TRUE(status.ok()) << StatusText(status);
  }
  // Files for the image imports.
  const std::string scratch = Sandbox::kScratchDir;
  ASSERT_TRUE(WriteFileAtomically(scratch + "/notatar", "this is not a tar archive\n", 0644).ok());
  ASSERT_TRUE(WriteFileAtomically(scratch + "/empty", "", 0644).ok());
  std::filesystem::create_directories(scratch + "/emptydir");

  absl::StatusOr<std::string> host_before = SettledHostSnapshot();
  ASSERT_TRUE(host_before.ok()) << host_before.status();
  const std::string traces_before = Traces();
  const std::string api_before = ApiState();

  std::vector<Row> rows;
  auto add = [&rows](std::string category, std::string what, std::function<grpc::Status()> call,
                     Code code, std::vector<std::string> mentions) {
    rows.push_back(
        {std::move(category), std::move(what), std::move(call), code, std::move(mentions)});
  };
  // Rows that create a container from ValidContainer() with one change.
  auto container = [&](std::string what, std::function<void(v1::ContainerSpec&)> change, Code code,
                       std::vector<std::string> mentions) {
    v1::ContainerSpec spec = ValidContainer();
    change(spec);
    add(
        "ContainerService.Create", std::move(what), [this, spec] { return CreateContainer(spec); },
        code, std::move(mentions));
  };
  auto invalid = [&](std::string what, std::function<void(v1::ContainerSpec&)> change,
                     std::vector<std::string> mentions) {
    container(std::move(what), std::move(change), Code::INVALID_ARGUMENT, std::move(mentions));
  };
  auto network = [&](std::string what, std::function<void(v1::NetworkSpec&)> change, Code code,
                     std::vector<std::string> mentions) {
    v1::NetworkSpec spec = ValidNetwork();
    change(spec);
    add(
        "NetworkService.Create", std::move(what), [this, spec] { return CreateNetwork(spec); },
        code, std::move(mentions));
  };
  auto group = [&](std::string what, std::function<void(v1::GroupSpec&)> change, Code code,
                   std::vector<std::string> mentions) {
    v1::GroupSpec spec = ValidGroup();
    change(spec);
    add(
        "GroupService.Apply", std::move(what), [this, spec] { return Apply(spec); }, code,
        std::move(mentions));
  };

  // ---- Names: every field that holds the name of a container, network or group. ----
  for (const BadName& bad : BadNames()) {
    invalid("container name: " + bad.label, [&](auto& s) { s.set_name(bad.name); },
            {"spec.name: container name \"", bad.says});
    invalid("network to attach: " + bad.label,
            [&](auto& s) { s.mutable_networks(0)->set_network(bad.name); },
            {"spec.networks[0].network: network name \"", bad.says});
    network("network name: " + bad.label, [&](auto& s) { s.set_name(bad.name); },
            Code::INVALID_ARGUMENT, {"spec.name: network name \"", bad.says});
    group("group name: " + bad.label, [&](auto& s) { s.set_name(bad.name); },
          Code::INVALID_ARGUMENT, {"spec.name: group name \"", bad.says});
    group("group member container name: " + bad.label,
          [&](auto& s) { s.mutable_containers(0)->mutable_spec()->set_name(bad.name); },
          Code::INVALID_ARGUMENT, {"spec.containers[0].spec.name: container name \"", bad.says});
    group("group member network name: " + bad.label,
          [&](auto& s) { s.mutable_networks(0)->set_name(bad.name); }, Code::INVALID_ARGUMENT,
          {"spec.networks[0].name: network name \"", bad.says});
    if (!bad.name.empty()) {  // empty: no network_from
      invalid("network_from: " + bad.label,
              [&](auto& s) {
                s.clear_networks();
                s.set_network_from(bad.name);
              },
              {"spec.network_from: container name \"", bad.says});
    }
  }
  container("container name taken", [](auto& s) { s.set_name("web"); }, Code::ALREADY_EXISTS,
            {"container \"web\" already exists"});
  network("network name taken", [](auto& s) { s.set_name("front"); }, Code::ALREADY_EXISTS,
          {"network \"front\" already exists"});

  // ---- ContainerService.Create: every field of ContainerSpec. ----
  // Image.
  invalid("empty image", [](auto& s) { s.clear_image(); }, {"spec.image: is empty"});
  invalid("image of 256 bytes", [](auto& s) { s.set_image(std::string(256, 'b')); },
          {"spec.image: is 256 bytes long, more than the 255 allowed"});
  invalid("image of 4 KiB", [](auto& s) { s.set_image(std::string(4096, 'b')); },
          {"spec.image: is 4096 bytes long"});
  invalid("image with NUL", [](auto& s) { s.set_image(std::string("busybox\0x", 9)); },
          {"spec.image: ", "NUL byte at offset 7"});
  for (const std::string& image :
       {std::string("nosuchimage"), std::string("busybox:nosuchtag"), std::string("Busybox"),
        "sha256:" + std::string(64, '0'), std::string("registry.local:5000/app:1.2")}) {
    container("unknown image " + image, [image](auto& s) { s.set_image(image); }, Code::NOT_FOUND,
              {"spec.image: image \"" + image + "\" not found"});
  }
  // Command.
  invalid("empty program", [](auto& s) { s.add_entrypoint(""); },
          {"spec.entrypoint[0]: is empty; name the program to run"});
  invalid("NUL in the entrypoint",
          [](auto& s) {
            s.add_entrypoint("sh");
            s.add_entrypoint(std::string("-c\0rm", 5));
          },
          {"spec.entrypoint[1]: ", "NUL byte at offset 2"});
  invalid("NUL in an argument", [](auto& s) { s.set_args(0, std::string("tr\0ue", 5)); },
          {"spec.args[0]: ", "NUL byte at offset 2"});
  invalid("4097 arguments", [](auto& s) { Fill(s.mutable_args(), 4096, "x"); },
          {"spec.args: has 4097 entries, more than the 4096 allowed"});
  invalid("4097 entrypoint entries", [](auto& s) { Fill(s.mutable_entrypoint(), 4097, "x"); },
          {"spec.entrypoint: has 4097 entries"});
  invalid("argument of 128 KiB", [](auto& s) { s.add_args(std::string(size_t{128} << 10, 'a')); },
          {"spec.args[1]: is 131072 bytes long, more than the 131071 allowed"});
  // Environment.
  invalid("env without =", [](auto& s) { s.add_env("FOO"); },
          {"spec.env[0]: \"FOO\" is not KEY=VALUE"});
  invalid("env with empty key", [](auto& s) { s.add_env("=x"); }, {"spec.env[0]: \"=x\""});
  invalid("empty env entry", [](auto& s) { s.add_env(""); },
          {"spec.env[0]: \"\" is not KEY=VALUE"});
  invalid("env with NUL",
          [](auto& s) {
            s.add_env("A=1");
            s.add_env(std::string("B=\0x", 4));
          },
          {"spec.env[1]: ", "NUL byte at offset 2"});
  invalid("10k env vars",
          [](auto& s) {
            for (int i = 0; i < 10000; ++i) s.add_env(absl::StrCat("VAR", i, "=value"));
          },
          {"spec.env: has 10000 entries, more than the 4096 allowed"});
  invalid("env value of 128 KiB",
          [](auto& s) { s.add_env("BIG=" + std::string(size_t{128} << 10, 'v')); },
          {"spec.env[0]: is 131076 bytes long"});
  // Working dir.
  invalid("relative working dir", [](auto& s) { s.set_working_dir("app"); },
          {"spec.working_dir: \"app\" is not an absolute path"});
  invalid("working dir with ..", [](auto& s) { s.set_working_dir("/app/../../etc"); },
          {"spec.working_dir: \"/app/../../etc\" has a \"..\" component"});
  invalid("working dir with NUL", [](auto& s) { s.set_working_dir(std::string("/app\0", 5)); },
          {"spec.working_dir: ", "NUL byte at offset 4"});
  invalid("working dir of 8 KiB", [](auto& s) { s.set_working_dir("/" + std::string(8191, 'd')); },
          {"spec.working_dir: is 8192 bytes long, more than the 4095 allowed"});
  // User.
  for (const std::string& user :
       {std::string("a:b:c"), std::string(":"), std::string("1000:"), std::string(":1000"),
        std::string("web user"), std::string("\t"), std::string("root\x7f")}) {
    invalid("user " + absl::CEscape(user), [user](auto& s) { s.set_user(user); },
            {"spec.user: ", "is not a user; use \"uid[:gid]\""});
  }
  invalid("user of 4 KiB", [](auto& s) { s.set_user(std::string(4096, 'u')); },
          {"spec.user: is 4096 bytes long, more than the 256 allowed"});
  invalid("user with NUL", [](auto& s) { s.set_user(std::string("root\0", 5)); },
          {"spec.user: ", "NUL byte at offset 4"});
  // Hostname.
  for (const std::string& hostname :
       {std::string("-web"), std::string("web-"), std::string("web.local"), std::string("web_1"),
        std::string("web 1"), std::string(64, 'h'), std::string(4096, 'h'),
        std::string("we\0b", 4)}) {
    invalid("hostname " + absl::CEscape(hostname.substr(0, 12)),
            [hostname](auto& s) { s.set_hostname(hostname); },
            {"spec.hostname: ", "is not a host name"});
  }
  // Labels, of containers, networks and groups alike.
  struct BadLabel {
    std::string label;
    std::string key;
    std::string value;
    std::string says;
  };
  const std::vector<BadLabel> bad_labels = {
      {"uppercase key", "App", "x", "key \"App\" is not a label key"},
      {"empty key", "", "x", "key \"\" is not a label key"},
      {"key of 64", std::string(64, 'k'), "x", "is not a label key; use 1 to 63"},
      {"key with a space", "a b", "x", "is not a label key"},
      {"key with =", "a=b", "x", "is not a label key"},
      {"non-ASCII key", "\xd0\xba\xd0\xbb", "x", "is not a label key"},
      {"key with NUL", std::string("a\0b", 3), "x", "is not a label key"},
      {"value of 256", "k", std::string(256, 'v'), "is 256 bytes long, more than the 255"},
      {"value of 4 KiB", "k", std::string(4096, 'v'), "is 4096 bytes long"},
      {"value with NUL", "k", std::string("v\0", 2), "NUL byte at offset 1"},
  };
  for (const BadLabel& bad : bad_labels) {
    invalid("container label " + bad.label,
            [&](auto& s) { (*s.mutable_labels()->mutable_labels())[bad.key] = bad.value; },
            {"spec.labels.labels[\"", bad.says});
    network("network label " + bad.label,
            [&](auto& s) { (*s.mutable_labels()->mutable_labels())[bad.key] = bad.value; },
            Code::INVALID_ARGUMENT, {"spec.labels.labels[\"", bad.says});
    group("group label " + bad.label,
          [&](auto& s) { (*s.mutable_labels()->mutable_labels())[bad.key] = bad.value; },
          Code::INVALID_ARGUMENT, {"spec.labels.labels[\"", bad.says});
  }
  // Networks to attach.
  container("unknown network", [](auto& s) { s.mutable_networks(0)->set_network("nosuchnet"); },
            Code::NOT_FOUND, {"spec.networks[0].network: network \"nosuchnet\" not found"});
  container("second network unknown", [](auto& s) { s.add_networks()->set_network("nosuchnet"); },
            Code::NOT_FOUND, {"spec.networks[1].network: network \"nosuchnet\" not found"});
  invalid("network attached twice", [](auto& s) { s.add_networks()->set_network("front"); },
          {"spec.networks[1].network: \"front\" is attached by spec.networks[0] already"});
  // Static routes: the next hop must be on one of the container's networks; a default route
  // of its own replaces the gateway's, but not twice.
  auto route = [](v1::ContainerSpec& s, const std::string& destination, const std::string& via) {
    v1::Route* r = s.add_routes();
    r->set_destination(destination);
    r->set_via(via);
  };
  invalid("route via an address on no network",
          [&route](auto& s) { route(s, "10.77.2.0/24", "10.99.0.1"); },
          {"spec.routes[0].via: 10.99.0.1 is on none of the container's networks (front "
           "10.88.1.0/24)"});
  invalid("route to a host address", [&route](auto& s) { route(s, "10.77.2.9/24", "10.88.1.254"); },
          {"spec.routes[0].destination: ", "did you mean 10.77.2.0/24?"});
  invalid("route twice",
          [&route](auto& s) {
            route(s, "default", "10.88.1.254");
            route(s, "0.0.0.0/0", "10.88.1.253");
          },
          {"spec.routes[1].destination: \"0.0.0.0/0\" has a route already (spec.routes[0])"});
  invalid("routes of a shared namespace",
          [&route](auto& s) {
            s.clear_networks();
            s.set_network_from("web");
            route(s, "default", "10.88.1.254");
          },
          {"spec.routes: the network namespace is \"web\"'s (network_from)"});
  for (const std::string& ip :
       {std::string("10.88.1.300"), std::string("10.88.1.5/24"), std::string("10.88.1"),
        std::string(" 10.88.1.5"), std::string("10.88.1.5\0", 10), std::string(4096, '1')}) {
    invalid("static address " + absl::CEscape(ip.substr(0, 16)),
            [ip](auto& s) { s.mutable_networks(0)->set_ip(ip); },
            {"spec.networks[0].ip: ", "is not an IP address"});
  }
  invalid("IPv6 static address", [](auto& s) { s.mutable_networks(0)->set_ip("fd00::5"); },
          {"spec.networks[0].ip: \"fd00::5\" is an IPv6 address"});
  // Static addresses only the network can judge: refused when attaching, rolled back.
  for (const auto& [ip, says] : std::vector<std::pair<std::string, std::string>>{
           {"10.99.0.5", "is outside subnet 10.88.1.0/24"},
           {"10.88.1.0", "is the network address of subnet 10.88.1.0/24"},
           {"10.88.1.255", "is the broadcast address of subnet 10.88.1.0/24"},
           {"10.88.1.1", "is the gateway of subnet 10.88.1.0/24"}}) {
    invalid("static address " + ip, [ip = ip](auto& s) { s.mutable_networks(0)->set_ip(ip); },
            {"container \"x\"", "network \"front\"", "address " + ip + " " + says});
  }
  container("static address taken by web",
            [](auto& s) { s.mutable_networks(0)->set_ip("10.88.1.10"); }, Code::ALREADY_EXISTS,
            {"container \"x\"", "network \"front\"", "address 10.88.1.10 is already leased"});
  for (const std::string& alias :
       {std::string("db_1"), std::string(""), std::string("a..b"), std::string("-db"),
        std::string(64, 'a'), std::string(254, 'a'), std::string("db 1"), std::string("d\0b", 3)}) {
    invalid("alias " + absl::CEscape(alias.substr(0, 12)),
            [alias](auto& s) { s.mutable_networks(0)->add_aliases(alias); },
            {"spec.networks[0].aliases[0]: ", "is not a DNS name"});
  }
  // network_from.
  container("network_from unknown",
            [](auto& s) {
              s.clear_networks();
              s.set_network_from("nosuch");
            },
            Code::NOT_FOUND, {"spec.network_from: container \"nosuch\" not found"});
  invalid("network_from itself",
          [](auto& s) {
            s.clear_networks();
            s.set_network_from("x");
          },
          {"spec.network_from: names the container itself"});
  invalid("network_from with networks", [](auto& s) { s.set_network_from("web"); },
          {"spec.networks: must be empty with network_from"});
  invalid("network_from with ports",
          [](auto& s) {
            s.clear_networks();
            s.set_network_from("web");
            s.add_ports()->set_host_port(9000);
            s.mutable_ports(0)->set_container_port(80);
          },
          {"spec.ports: must be empty with network_from"});
  // Published ports.
  auto port = [](v1::ContainerSpec& s, uint32_t host, uint32_t inside,
                 v1::Protocol protocol = v1::PROTOCOL_TCP, const std::string& host_ip = "") {
    v1::PortMapping* p = s.add_ports();
    p->set_host_port(host);
    p->set_container_port(inside);
    p->set_protocol(protocol);
    p->set_host_ip(host_ip);
  };
  for (uint32_t bad : {0u, 65536u, 70000u, 4294967295u}) {
    invalid(absl::StrCat("host port ", bad), [&port, bad](auto& s) { port(s, bad, 80); },
            {absl::StrCat("spec.ports[0].host_port: ", bad, " is not a port (1-65535)")});
    invalid(absl::StrCat("container port ", bad), [&port, bad](auto& s) { port(s, 9000, bad); },
            {absl::StrCat("spec.ports[0].container_port: ", bad, " is not a port (1-65535)")});
  }
  for (int protocol : {3, -1, 1000}) {
    invalid(absl::StrCat("protocol ", protocol),
            [&port, protocol](auto& s) { port(s, 9000, 80, static_cast<v1::Protocol>(protocol)); },
            {absl::StrCat("spec.ports[0].protocol: ", protocol, " is not a protocol")});
  }
  for (const std::string& host_ip : {std::string("1.2.3"), std::string("300.0.0.1"),
                                     std::string("localhost"), std::string("1.2.3.4\0", 8)}) {
    invalid("host address " + absl::CEscape(host_ip),
            [&port, host_ip](auto& s) { port(s, 9000, 80, v1::PROTOCOL_TCP, host_ip); },
            {"spec.ports[0].host_ip: ", "is not an IP address"});
  }
  invalid("IPv6 host address", [&port](auto& s) { port(s, 9000, 80, v1::PROTOCOL_TCP, "::1"); },
          {"spec.ports[0].host_ip: \"::1\" is an IPv6 address"});
  invalid("same host port twice",
          [&port](auto& s) {
            port(s, 9000, 80);
            port(s, 9000, 81);
          },
          {"spec.ports[1]: ", "uses the host port of spec.ports[0]"});
  invalid("same host port, unspecified protocol and TCP",
          [&port](auto& s) {
            port(s, 9000, 80, v1::PROTOCOL_UNSPECIFIED);
            port(s, 9000, 81, v1::PROTOCOL_TCP);
          },
          {"spec.ports[1]: ", "uses the host port of spec.ports[0]"});
  invalid("same host port on every address and on one",
          [&port](auto& s) {
            port(s, 9000, 80);
            port(s, 9000, 81, v1::PROTOCOL_TCP, "203.0.113.1");
          },
          {"spec.ports[1]: ", "uses the host port of spec.ports[0]"});
  invalid("same host port on the same address",
          [&port](auto& s) {
            port(s, 9001, 81, v1::PROTOCOL_UDP);
            port(s, 9000, 80, v1::PROTOCOL_TCP, "203.0.113.1");
            port(s, 9000, 81, v1::PROTOCOL_TCP, "203.0.113.1");
          },
          {"spec.ports[2]: ", "uses the host port of spec.ports[1]"});
  invalid("ports without a network",
          [&port](auto& s) {
            s.clear_networks();
            port(s, 9000, 80);
          },
          {"spec.ports: needs a network to forward to"});
  container("host port published by web", [&port](auto& s) { port(s, 8080, 80); },
            Code::ALREADY_EXISTS,
            {"container \"x\"", "host port 8080/tcp is already published by container \"web\""});
  container("host port published by web, on one address",
            [&port](auto& s) { port(s, 8080, 80, v1::PROTOCOL_TCP, "203.0.113.1"); },
            Code::ALREADY_EXISTS,
            {"container \"x\"", "host port 8080/tcp is already published by container \"web\""});
  // Mounts.
  auto mount = [](v1::ContainerSpec& s, const std::string& source, const std::string& destination,
                  v1::Mount::Type type = v1::Mount::TYPE_BIND) {
    v1::Mount* m = s.add_mounts();
    m->set_type(type);
    m->set_source(source);
    m->set_destination(destination);
  };
  for (int type : {3, -1}) {
    invalid(
        absl::StrCat("mount type ", type),
        [&mount, type](auto& s) { mount(s, "/srv", "/data", static_cast<v1::Mount::Type>(type)); },
        {absl::StrCat("spec.mounts[0].type: ", type, " is not a mount type")});
  }
  for (const auto& [source, says] : std::vector<std::pair<std::string, std::string>>{
           {"data", "is not an absolute path"},
           {"", "is empty; give an absolute path"},
           {"../../etc", "is not an absolute path"},
           {"/srv/../etc", "has a \"..\" component"},
           {"/../../etc/shadow", "has a \"..\" component"},
           {"/srv/data/..", "has a \"..\" component"},
           {"/run/scratch/../../../root", "has a \"..\" component"},
           {std::string("/srv\0/etc", 9), "NUL byte at offset 4"},
           {"/" + std::string(4095, 's'), "is 4096 bytes long, more than the 4095 allowed"}}) {
    invalid("bind source " + absl::CEscape(source.substr(0, 24)),
            [&mount, source = source](auto& s) { mount(s, source, "/data"); },
            {"spec.mounts[0].source: ", says});
  }
  for (const auto& [destination, says] : std::vector<std::pair<std::string, std::string>>{
           {"data", "is not an absolute path"},
           {"", "is empty"},
           {"/", "is the container's root directory"},
           {"/data/../etc", "has a \"..\" component"},
           {"/..", "has a \"..\" component"},
           {"/x//y", "is not in normal form; write \"/x/y\""},
           {"/x/", "is not in normal form; write \"/x\""},
           {"/x/./y", "is not in normal form; write \"/x/y\""},
           {std::string("/x\0y", 4), "NUL byte at offset 2"}}) {
    invalid("mount destination " + absl::CEscape(destination),
            [&mount, destination = destination](auto& s) { mount(s, "/srv", destination); },
            {"spec.mounts[0].destination: ", says});
  }
  invalid("two mounts on one destination",
          [&mount](auto& s) {
            mount(s, "/srv", "/data");
            mount(s, "", "/data", v1::Mount::TYPE_TMPFS);
          },
          {"spec.mounts[1].destination: \"/data\" is the destination of spec.mounts[0] already"});
  invalid("tmpfs size on a bind mount",
          [&mount](auto& s) {
            mount(s, "/srv", "/data");
            s.mutable_mounts(0)->set_tmpfs_size_bytes(1 << 20);
          },
          {"spec.mounts[0].tmpfs_size_bytes: is for tmpfs mounts only"});
  invalid(
      "tmpfs source with NUL",
      [&mount](auto& s) { mount(s, std::string("tmp\0fs", 6), "/data", v1::Mount::TYPE_TMPFS); },
      {"spec.mounts[0].source: ", "NUL byte at offset 3"});
  // Resources.
  for (int64_t memory : {int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
    invalid(absl::StrCat("memory ", memory),
            [memory](auto& s) { s.mutable_resources()->set_memory_bytes(memory); },
            {absl::StrCat("spec.resources.memory_bytes: ", memory, " is negative")});
  }
  for (int64_t memory : {int64_t{1}, int64_t{1000}, (int64_t{1} << 20) - 1}) {
    invalid(absl::StrCat("memory ", memory),
            [memory](auto& s) { s.mutable_resources()->set_memory_bytes(memory); },
            {absl::StrCat("spec.resources.memory_bytes: ", memory,
                          " bytes is less than the smallest limit")});
  }
  for (double cpus :
       {-1.0, -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity(),
        std::numeric_limits<double>::quiet_NaN()}) {
    invalid(absl::StrCat("cpus ", cpus), [cpus](auto& s) { s.mutable_resources()->set_cpus(cpus); },
            {"spec.resources.cpus: ", "is not a number of CPUs"});
  }
  for (double cpus : {0.005, 1024.5, 1e308}) {
    invalid(absl::StrCat("cpus ", cpus), [cpus](auto& s) { s.mutable_resources()->set_cpus(cpus); },
            {"spec.resources.cpus: ", "is outside 0.01 to 1024"});
  }
  for (int64_t pids : {int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
    invalid(absl::StrCat("pids ", pids), [pids](auto& s) { s.mutable_resources()->set_pids(pids); },
            {absl::StrCat("spec.resources.pids: ", pids, " is negative")});
  }
  // Restart policy.
  for (int mode : {5, -1}) {
    invalid(absl::StrCat("restart mode ", mode),
            [mode](auto& s) {
              s.mutable_restart()->set_mode(static_cast<v1::RestartPolicy::Mode>(mode));
            },
            {absl::StrCat("spec.restart.mode: ", mode, " is not a restart mode")});
  }
  for (v1::RestartPolicy::Mode mode :
       {v1::RestartPolicy::MODE_UNSPECIFIED, v1::RestartPolicy::MODE_NO,
        v1::RestartPolicy::MODE_ALWAYS, v1::RestartPolicy::MODE_UNLESS_STOPPED}) {
    invalid("max_retries with " + v1::RestartPolicy::Mode_Name(mode),
            [mode](auto& s) {
              s.mutable_restart()->set_mode(mode);
              s.mutable_restart()->set_max_retries(3);
            },
            {"spec.restart.max_retries: applies to MODE_ON_FAILURE only, and mode is " +
             v1::RestartPolicy::Mode_Name(mode)});
  }
  // Health check.
  auto health = [](v1::ContainerSpec& s) -> v1::HealthCheck& {
    v1::HealthCheck* h = s.mutable_health_check();
    if (h->command().empty()) h->add_command("true");
    return *h;
  };
  invalid("health check without a command",
          [](auto& s) { *s.mutable_health_check()->mutable_interval() = D(1); },
          {"spec.health_check.command: is empty"});
  invalid("health check with an empty program", [&](auto& s) { health(s).set_command(0, ""); },
          {"spec.health_check.command[0]: is empty"});
  invalid("health check command with NUL",
          [&](auto& s) { health(s).add_command(std::string("a\0b", 3)); },
          {"spec.health_check.command[1]: ", "NUL byte at offset 1"});
  for (const auto& [field, set] :
       std::vector<std::pair<std::string,
                             std::function<void(v1::HealthCheck&, google::protobuf::Duration)>>>{
           {"interval", [](auto&h, auto d) { *h.mutable_interval() = d; }},
           {"timeout", [](auto&h, auto d) { *h.mutable_timeout() = d; }}}) {
    for (const auto& [label, d, says] :
         std::vector<std::tuple<std::string, google::protobuf::Duration, std::string>>{
             {"0", D(0), "0 is shorter than 1ms"},
             {"500us", D(0, 500000), "500us is shorter than 1ms"},
             {"-5s", D(-5), "-5s is shorter than 1ms"},
             {"10001 years", D(315576000001), "seconds 315576000001 is out of range"},
             {"nanos 1e9", D(0, 1000000000), "nanos 1000000000 is out of range"},
             {"mixed signs", D(1, -1), "seconds 1 and nanos -1 have different signs"}}) {
      invalid("health check " + field + " " + label,
              [&, set = set, d = d](auto& s) { set(health(s), d); },
              {"spec.health_check." + field + ": " + says});
    }
  }
  invalid("health check start period -1ms",
          [&](auto& s) { *health(s).mutable_start_period() = D(0, -1000000); },
          {"spec.health_check.start_period: -1ms is negative"});
  invalid("health check start period with mixed signs",
          [&](auto& s) { *health(s).mutable_start_period() = D(-1, 5); },
          {"spec.health_check.start_period: ", "have different signs"});
  // Capabilities.
  for (const std::string& cap :
       {std::string("NET_WIZARD"), std::string("CAP_"), std::string(""), std::string("SYS_ADMIN "),
        std::string("CAP_ALL"), std::string("cap-net-admin")}) {
    invalid("cap_add " + absl::CEscape(cap), [cap](auto& s) { s.add_cap_add(cap); },
            {"spec.cap_add[0]: unknown capability \""});
  }
  invalid("cap_add with NUL", [](auto& s) { s.add_cap_add(std::string("NET_ADMIN\0", 10)); },
          {"spec.cap_add[0]: ", "NUL byte at offset 9"});
  invalid("cap_add of 65 bytes", [](auto& s) { s.add_cap_add(std::string(65, 'C')); },
          {"spec.cap_add[0]: is 65 bytes long, more than the 64 allowed"});
  invalid("cap_drop unknown",
          [](auto& s) {
            s.add_cap_drop("NET_RAW");
            s.add_cap_drop("FOO");
          },
          {"spec.cap_drop[1]: unknown capability \"FOO\""});
  // User namespace, stop timeout, logs.
  for (uint32_t base : {4294901760u, 4294967295u}) {
    invalid(absl::StrCat("userns_host_base ", base),
            [base](auto& s) { s.set_userns_host_base(base); },
            {absl::StrCat("spec.userns_host_base: ", base, " + 65536 ids runs past host id")});
  }
  invalid("stop timeout -1s", [](auto& s) { *s.mutable_stop_timeout() = D(-1); },
          {"spec.stop_timeout: -1s is negative"});
  invalid("stop timeout of 10001 years",
          [](auto& s) { *s.mutable_stop_timeout() = D(315576000001); },
          {"spec.stop_timeout: seconds 315576000001 is out of range"});
  invalid("stop timeout with nanos -1e9",
          [](auto& s) { *s.mutable_stop_timeout() = D(0, -1000000000); },
          {"spec.stop_timeout: nanos -1000000000 is out of range"});
  for (uint32_t files : {101u, 4294967295u}) {
    invalid(absl::StrCat("log_max_files ", files), [files](auto& s) { s.set_log_max_files(files); },
            {absl::StrCat("spec.log_max_files: ", files, " is more than 100")});
  }
  // A request over meshd's receive limit (8 MiB): refused by gRPC before any handler.
  container("request of 9 MiB",
            [](auto& s) {
              for (int i = 0; i < 72; ++i) s.add_args(std::string(size_t{128} << 10, 'a'));
            },
            Code::RESOURCE_EXHAUSTED, {"larger than max"});

  // ---- Container lifecycle calls. ----
  auto start = [this](std::string name) {
    return [this, name] {
      v1::StartContainerRequest request;
      request.set_name(name);
      v1::Container c;
      return meshd().containers().Start(Ctx().get(), request, &c);
    };
  };
  auto stop = [this](std::string name, std::optional<google::protobuf::Duration> timeout) {
    return [this, name, timeout] {
      v1::StopContainerRequest request;
      request.set_name(name);
      if (timeout) *request.mutable_timeout() = *timeout;
      v1::Container c;
      return meshd().containers().Stop(Ctx().get(), request, &c);
    };
  };
  auto kill = [this](std::string name, std::string signal) {
    return [this, name, signal] {
      v1::KillContainerRequest request;
      request.set_name(name);
      request.set_signal(signal);
      v1::Container c;
      return meshd().containers().Kill(Ctx().get(), request, &c);
    };
  };
  auto remove = [this](std::string name, bool force) {
    return [this, name, force] {
      v1::RemoveContainerRequest request;
      request.set_name(name);
      request.set_force(force);
      v1::RemoveContainerResponse response;
      return meshd().containers().Remove(Ctx().get(), request, &response);
    };
  };
  const std::string kStart = "ContainerService.Start", kStop = "ContainerService.Stop",
                    kKill = "ContainerService.Kill", kRemove = "ContainerService.Remove",
                    kOther = "ContainerService.Get/Wait/Stats";
  for (const std::string& name :
       {std::string("nosuch"), std::string(""), std::string("NoSuch"), std::string("a/../b")}) {
    const std::string shown = "container \"" + name + "\" not found";
    add(kStart, "unknown container " + name, start(name), Code::NOT_FOUND, {shown});
    add(kStop, "unknown container " + name, stop(name, std::nullopt), Code::NOT_FOUND, {shown});
    add(kKill, "unknown container " + name, kill(name, "TERM"), Code::NOT_FOUND, {shown});
    add(kRemove, "unknown container " + name, remove(name, true), Code::NOT_FOUND, {shown});
  }
  add(kStart, "unknown container of 4 KiB", start(std::string(4096, 'a')), Code::NOT_FOUND,
      {"container \"aaaa", "not found"});
  add(kStop, "negative timeout", stop("web", D(-1)), Code::INVALID_ARGUMENT,
      {"timeout: ", "negative"});
  add(kStop, "negative timeout, unknown container", stop("nosuch", D(0, -5)),
      Code::INVALID_ARGUMENT, {"timeout: ", "negative"});
  add(kStop, "timeout of 10001 years", stop("idle", D(315576000001)), Code::INVALID_ARGUMENT,
      {"timeout: seconds 315576000001 is out of range"});
  add(kStop, "timeout nanos out of range", stop("idle", D(0, 2000000000)), Code::INVALID_ARGUMENT,
      {"timeout: nanos 2000000000 is out of range"});
  add(kStop, "timeout with mixed signs", stop("idle", D(1, -1)), Code::INVALID_ARGUMENT,
      {"timeout: seconds 1 and nanos -1 have different signs"});
  // Signals: parsed before the container is looked at ("idle" would refuse any: not running).
  for (const std::string& signal :
       {std::string("SIGFOO"), std::string("FOO"), std::string("0"), std::string("65"),
        std::string("-9"), std::string("+9"), std::string("9 "), std::string(" 9"),
        std::string("SIG"), std::string("SIGRTMIN+31"), std::string("RTMAX-31"),
        std::string("RTMIN-1"), std::string("1000"), std::string("0x9"), std::string("KILL\0", 5),
        std::string(4096, 'S')}) {
    add(kKill, "signal " + absl::CEscape(signal.substr(0, 12)), kill("idle", signal),
        Code::INVALID_ARGUMENT, {"signal \"", "is not known"});
  }
  add(kKill, "bad signal, unknown container", kill("nosuch", "SIGFOO"), Code::INVALID_ARGUMENT,
      {"signal \"SIGFOO\" is not known"});
  add(kKill, "container not running", kill("idle", "TERM"), Code::FAILED_PRECONDITION,
      {"container \"idle\" is not running"});
  add(kRemove, "running container", remove("web", false), Code::FAILED_PRECONDITION,
      {"container \"web\" is running"});
  add(kRemove, "container whose network another shares", remove("web", true),
      Code::FAILED_PRECONDITION, {"container \"web\" shares its network with web-sidecar"});
  add(kOther, "Get of an unknown container",
      [this] {
        v1::GetContainerRequest request;
        request.set_name("nosuch");
        v1::Container c;
        return meshd().containers().Get(Ctx().get(), request, &c);
      },
      Code::NOT_FOUND, {"container \"nosuch\" not found"});
  add(kOther, "Wait for an unknown container",
      [this] {
        v1::WaitContainerRequest request;
        request.set_name("nosuch");
        v1::WaitContainerResponse response;
        return meshd().containers().Wait(Ctx().get(), request, &response);
      },
      Code::NOT_FOUND, {"container \"nosuch\" not found"});
  for (const auto& [name, code, says] : std::vector<std::tuple<std::string, Code, std::string>>{
           {"nosuch", Code::NOT_FOUND, "container \"nosuch\" not found"},
           {"idle", Code::FAILED_PRECONDITION, "container \"idle\" is not running"}}) {
    add(kOther, "Stats of " + name,
        [this, name = name] {
          v1::StatsRequest request;
          request.set_name(name);
          v1::ContainerStats stats;
          return meshd().containers().Stats(Ctx().get(), request, &stats);
        },
        code, {says});
  }
  // Logs.
  auto logs = [&](std::string what, std::function<void(v1::LogsRequest&)> change, Code code,
                  std::vector<std::string> mentions) {
    v1::LogsRequest request;
    request.set_name("web");
    change(request);
    add(
        "ContainerService.Logs", std::move(what), [this, request] { return Logs(request); }, code,
        std::move(mentions));
  };
  logs("unknown container", [](auto& r) { r.set_name("nosuch"); }, Code::NOT_FOUND,
       {"container \"nosuch\" not found"});
  for (const auto& [label, since] :
       std::vector<std::pair<std::string, google::protobuf::Timestamp>>{
           {"before year 1", T(-62135596801)},
           {"after year 9999", T(253402300800)},
           {"negative nanos", T(0, -1)},
           {"nanos 1e9", T(0, 1000000000)}}) {
    logs("since " + label, [since = since](auto& r) { *r.mutable_since() = since; },
         Code::INVALID_ARGUMENT, {"since: ", "is not a valid timestamp"});
  }
  logs("unknown stream", [](auto& r) { r.add_streams(static_cast<v1::LogStream>(7)); },
       Code::INVALID_ARGUMENT, {"streams[0]: 7 is not a log stream"});
  logs("unspecified stream",
       [](auto& r) {
         r.add_streams(v1::LOG_STREAM_STDOUT);
         r.add_streams(v1::LOG_STREAM_UNSPECIFIED);
       },
       Code::INVALID_ARGUMENT, {"streams[1]: 0 is not a log stream"});
  // Exec.
  auto exec = [&](std::string what, std::function<void(v1::ExecStart&)> change, Code code,
                  std::vector<std::string> mentions) {
    v1::ExecRequest request;
    v1::ExecStart* s = request.mutable_start();
    s->set_container("web");
    s->add_args("true");
    change(*s);
    add(
        "ContainerService.Exec", std::move(what), [this, request] { return Exec({request}); }, code,
        std::move(mentions));
  };
  {
    v1::ExecRequest stdin_first;
    stdin_first.set_stdin("data");
    add("ContainerService.Exec", "stdin before start",
        [this, stdin_first] { return Exec({stdin_first}); }, Code::INVALID_ARGUMENT,
        {"start: the first message of an exec must carry `start`"});
    add("ContainerService.Exec", "no message at all", [this] { return Exec({}); },
        Code::INVALID_ARGUMENT, {"start: the first message of an exec must carry `start`"});
  }
  exec("unknown container", [](auto& s) { s.set_container("nosuch"); }, Code::NOT_FOUND,
       {"container \"nosuch\" not found"});
  exec("container not running", [](auto& s) { s.set_container("idle"); }, Code::FAILED_PRECONDITION,
       {"container \"idle\" is not running"});
  exec("no command", [](auto& s) { s.clear_args(); }, Code::INVALID_ARGUMENT, {"start.args: "});
  exec("empty program", [](auto& s) { s.set_args(0, ""); }, Code::INVALID_ARGUMENT,
       {"start.args[0]: is empty"});
  exec("argument with NUL", [](auto& s) { s.set_args(0, std::string("tr\0ue", 5)); },
       Code::INVALID_ARGUMENT, {"start.args[0]: ", "NUL byte at offset 2"});
  exec("4097 arguments", [](auto& s) { Fill(s.mutable_args(), 4096, "x"); }, Code::INVALID_ARGUMENT,
       {"start.args: has 4097 entries"});
  exec("env without =", [](auto& s) { s.add_env("FOO"); }, Code::INVALID_ARGUMENT,
       {"start.env[0]: \"FOO\" is not KEY=VALUE"});
  exec("10k env vars",
       [](auto& s) {
         for (int i = 0; i < 10000; ++i) s.add_env(absl::StrCat("V", i, "=x"));
       },
       Code::INVALID_ARGUMENT, {"start.env: has 10000 entries"});
  exec("relative working dir", [](auto& s) { s.set_working_dir("tmp"); }, Code::INVALID_ARGUMENT,
       {"start.working_dir: \"tmp\" is not an absolute path"});
  exec("user a:b:c", [](auto& s) { s.set_user("a:b:c"); }, Code::INVALID_ARGUMENT,
       {"start.user: "});
  exec("unknown user", [](auto& s) { s.set_user("nosuchuser"); }, Code::INVALID_ARGUMENT,
       {"start.user: ", "nosuchuser"});

  // ---- NetworkService.Create. ----
  for (const auto& [subnet, says] : std::vector<std::pair<std::string, std::string>>{
           {"10.88.300.0/24", "\"10.88.300.0\" is not an IP address"},
           {"10.88.3.0", "missing prefix length"},
           {"10.88.3.0/", "prefix length \"\" is not a number"},
           {"10.88.3.0/33", "prefix length \"33\" is not a number from 0 to 32"},
           {"10.88.3.0/-1", "prefix length \"-1\""},
           {"10.88.3.0/+24", "prefix length \"+24\""},
           {"10.88.3.0/ 24", "prefix length \" 24\""},
           {"10.88.3.0/24 ", "prefix length \"24 \""},
           {"10.88.3.0/24/24", "prefix length \"24/24\""},
           {"10.88.3/24", "\"10.88.3\" is not an IP address"},
           {"010.88.3.0/24", "\"010.88.3.0\" is not an IP address"},
           {"0x0a.88.3.0/24", "is not an IP address"},
           {"abc", "missing prefix length"},
           {"/24", "\"\" is not an IP address"},
           {std::string("10.88.3.0/24\0", 13), "prefix length \"24\\000\""},
           {std::string("10.88.3.0\0/24", 13), "is not an IP address"},
           {std::string(4096, '1'), "missing prefix length"},
           {"10.88.3.1/24", "has host bits set; did you mean 10.88.3.0/24?"},
           {"10.88.3.128/24", "did you mean 10.88.3.0/24?"},
           {"10.0.0.0/7", "has prefix length 7; give one from 8 to 30"},
           {"0.0.0.0/0", "has prefix length 0"},
           {"10.88.3.0/31", "has prefix length 31"},
           {"10.88.3.4/32", "has prefix length 32"},
           {"fd00::/64", "\"fd00::/64\" is IPv6"},
           {"::/0", "is IPv6"}}) {
    network("subnet " + absl::CEscape(subnet.substr(0, 20)),
            [subnet = subnet](auto& s) { s.set_subnet(subnet); }, Code::INVALID_ARGUMENT,
            {"spec.subnet: ", says});
  }
  // Overlaps with networks that exist: refused by the address pools, before any kernel change.
  for (const auto& [subnet, other] :
       std::vector<std::pair<std::string, std::string>>{{"10.88.1.0/24", "front"},
                                                        {"10.88.0.0/16", "front"},
                                                        {"10.0.0.0/8", "front"},
                                                        {"10.88.1.128/25", "front"},
                                                        {"10.88.1.252/30", "front"},
                                                        {"10.88.0.0/23", "front"},
                                                        {"10.88.2.0/23", "pod-net"}}) {
    network("subnet " + subnet + " overlapping " + other,
            [subnet = subnet](auto& s) { s.set_subnet(subnet); }, Code::INVALID_ARGUMENT,
            {"network \"n1\"", "subnet " + subnet + " overlaps network \"" + other + "\""});
  }
  for (const auto& [subnet, gateway, says] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"", "10.88.3.1", "needs a subnet"},
           {"10.88.3.0/24", "10.88.4.1", "gateway 10.88.4.1 is outside subnet 10.88.3.0/24"},
           {"10.88.3.0/24", "10.88.3.0", "is the network address of subnet 10.88.3.0/24"},
           {"10.88.3.0/24", "10.88.3.255", "is the broadcast address of subnet 10.88.3.0/24"},
           {"10.88.3.0/24", "fd00::1", "\"fd00::1\" is an IPv6 address"},
           {"10.88.3.0/24", "10.88.3.256", "\"10.88.3.256\" is not an IP address"},
           {"10.88.3.0/24", "10.88.3.1/24", "is not an IP address"},
           {"10.88.3.0/24", " 10.88.3.1", "is not an IP address"}}) {
    network("gateway " + gateway + " in " + subnet,
            [subnet = subnet, gateway = gateway](auto& s) {
              s.set_subnet(subnet);
              s.set_gateway(gateway);
            },
            Code::INVALID_ARGUMENT, {"spec.gateway: ", says});
  }
  for (uint32_t mtu : {1u, 67u, 65536u, 4294967295u}) {
    network(absl::StrCat("mtu ", mtu), [mtu](auto& s) { s.set_mtu(mtu); }, Code::INVALID_ARGUMENT,
            {absl::StrCat("spec.mtu: ", mtu, " is outside 68 to 65535")});
  }
  // Remove, Get, Connect, Disconnect.
  const std::string kNet = "NetworkService.Remove/Get";
  for (const auto& [name, code, says] : std::vector<std::tuple<std::string, Code, std::string>>{
           {"front", Code::FAILED_PRECONDITION, "network \"front\" is in use by "},
           {"nosuch", Code::NOT_FOUND, "network \"nosuch\" not found"},
           {"", Code::NOT_FOUND, "network \"\" not found"}}) {
    add(kNet, "Remove " + name,
        [this, name = name] {
          v1::RemoveNetworkRequest request;
          request.set_name(name);
          v1::RemoveNetworkResponse response;
          return meshd().networks().Remove(Ctx().get(), request, &response);
        },
        code, {says});
  }
  add(kNet, "Remove a network in use names its containers",
      [this] {
        v1::RemoveNetworkRequest request;
        request.set_name("front");
        v1::RemoveNetworkResponse response;
        return meshd().networks().Remove(Ctx().get(), request, &response);
      },
      Code::FAILED_PRECONDITION, {"idle", "web"});
  add(kNet, "Get of an unknown network",
      [this] {
        v1::GetNetworkRequest request;
        request.set_name("nosuch");
        v1::Network n;
        return meshd().networks().Get(Ctx().get(), request, &n);
      },
      Code::NOT_FOUND, {"network \"nosuch\" not found"});
  auto connect = [&](std::string what, std::string name, std::string net, std::string ip,
                     std::vector<std::string> aliases, Code code,
                     std::vector<std::string> mentions) {
    add(
        "NetworkService.Connect/Disconnect", std::move(what),
        [this, name, net, ip, aliases] {
          v1::ConnectRequest request;
          request.set_container(name);
          request.set_network(net);
          request.set_ip(ip);
          for (const std::string& a : aliases) request.add_aliases(a);
          v1::ConnectResponse response;
          return meshd().networks().Connect(Ctx().get(), request, &response);
        },
        code, std::move(mentions));
  };
  connect("Connect to an unknown network", "web", "nosuchnet", "", {}, Code::NOT_FOUND,
          {"network \"nosuchnet\" not found"});
  connect("Connect an unknown container", "nosuch", "pod-net", "", {}, Code::NOT_FOUND,
          {"container \"nosuch\" not found"});
  connect("Connect to a network it is on", "web", "front", "", {}, Code::ALREADY_EXISTS,
          {"container \"web\" is already on network \"front\""});
  connect("Connect a container sharing another's network", "web-sidecar", "pod-net", "", {},
          Code::FAILED_PRECONDITION, {"container \"web-sidecar\" uses the network of \"web\""});
  connect("Connect with a malformed address", "web", "pod-net", "10.88.2.300", {},
          Code::INVALID_ARGUMENT, {"ip: \"10.88.2.300\" is not an IP address"});
  connect("Connect with an address outside the subnet", "web", "pod-net", "10.99.0.5", {},
          Code::INVALID_ARGUMENT,
          {"container \"web\"", "network \"pod-net\"",
           "address 10.99.0.5 is outside subnet 10.88.2.0/24"});
  connect("Connect with the gateway's address", "web", "pod-net", "10.88.2.1", {},
          Code::INVALID_ARGUMENT,
          {"container \"web\"", "address 10.88.2.1 is the gateway of subnet 10.88.2.0/24"});
  connect("Connect with the broadcast address", "web", "pod-net", "10.88.2.255", {},
          Code::INVALID_ARGUMENT,
          {"container \"web\"", "address 10.88.2.255 is the broadcast address"});
  connect("Connect with an IPv6 address", "web", "pod-net", "fd00::5", {}, Code::INVALID_ARGUMENT,
          {"ip: \"fd00::5\" is an IPv6 address"});
  for (const std::string& alias : {std::string("db_1"), std::string(""), std::string("a..b"),
                                   std::string(254, 'a'), std::string("d\0b", 3)}) {
    connect("Connect with alias " + absl::CEscape(alias.substr(0, 12)), "web", "pod-net", "",
            {alias}, Code::INVALID_ARGUMENT, {"aliases[0]: ", "is not a DNS name"});
  }
  for (const auto& [name, net, says] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"web", "pod-net", "container \"web\" is not on network \"pod-net\""},
           {"web", "nosuchnet", "container \"web\" is not on network \"nosuchnet\""},
           {"nosuch", "front", "container \"nosuch\" not found"}}) {
    add("NetworkService.Connect/Disconnect", "Disconnect " + name + " from " + net,
        [this, name = name, net = net] {
          v1::DisconnectRequest request;
          request.set_container(name);
          request.set_network(net);
          v1::DisconnectResponse response;
          return meshd().networks().Disconnect(Ctx().get(), request, &response);
        },
        Code::NOT_FOUND, {says});
  }

  // ---- GroupService. ----
  group("bad member spec",
        [](auto& s) {
          v1::PortMapping* p = s.mutable_containers(1)->mutable_spec()->add_ports();
          p->set_host_port(0);
          p->set_container_port(80);
        },
        Code::INVALID_ARGUMENT, {"spec.containers[1].spec.ports[0].host_port: 0 is not a port"});
  group("bad member network", [](auto& s) { s.mutable_networks(0)->set_subnet("10.88.4.1/24"); },
        Code::INVALID_ARGUMENT, {"spec.networks[0].subnet: ", "did you mean 10.88.4.0/24?"});
  group("member image with NUL",
        [](auto& s) { s.mutable_containers(0)->mutable_spec()->set_image(std::string("a\0", 2)); },
        Code::INVALID_ARGUMENT, {"spec.containers[0].spec.image: ", "NUL byte"});
  group("duplicate container names",
        [](auto& s) { s.mutable_containers(1)->mutable_spec()->set_name("a"); },
        Code::INVALID_ARGUMENT,
        {"spec.containers[1].spec.name: \"a\" is taken by spec.containers[0] already"});
  group("duplicate network names",
        [](auto& s) {
          v1::NetworkSpec* other = s.add_networks();
          other->set_name("net");
          other->set_subnet("10.88.5.0/24");
        },
        Code::INVALID_ARGUMENT, {"spec.networks[1].name: \"net\" is taken by spec.networks[0]"});
  group("member name too long with the group's prefix",
        [](auto& s) {
          s.set_name(std::string(40, 'g'));
          s.mutable_containers(0)->mutable_spec()->set_name(std::string(30, 'c'));
        },
        Code::INVALID_ARGUMENT,
        {"spec.containers[0].spec.name: with the group's prefix: container name \"", "71"});
  group("member on a network outside the group",
        [](auto& s) {
          s.mutable_containers(0)->mutable_spec()->mutable_networks(0)->set_network("front");
        },
        Code::INVALID_ARGUMENT,
        {"spec.containers[0].spec.networks[0].network: \"front\" is not a network of group \"g\""});
  group("member on an unknown network",
        [](auto& s) {
          s.mutable_containers(0)->mutable_spec()->mutable_networks(0)->set_network("nosuchnet");
        },
        Code::INVALID_ARGUMENT,
        {"spec.containers[0].spec.networks[0].network: \"nosuchnet\" is not a network of group"});
  group("network_from unknown member",
        [](auto& s) {
          v1::ContainerSpec* c = s.mutable_containers(1)->mutable_spec();
          c->clear_networks();
          c->set_network_from("nosuch");
        },
        Code::INVALID_ARGUMENT,
        {"spec.containers[1].spec.network_from: \"nosuch\" is not a container of group \"g\""});
  group("depends_on unknown member",
        [](auto& s) { s.mutable_containers(1)->mutable_depends_on(0)->set_container("nosuch"); },
        Code::INVALID_ARGUMENT,
        {"spec.containers[1].depends_on[0].container: \"nosuch\" is not a container of group"});
  group("depends_on itself",
        [](auto& s) { s.mutable_containers(1)->mutable_depends_on(0)->set_container("b"); },
        Code::INVALID_ARGUMENT,
        {"spec.containers[1].depends_on[0].container: names the container itself"});
  group("depends_on twice",
        [](auto& s) { s.mutable_containers(1)->add_depends_on()->set_container("a"); },
        Code::INVALID_ARGUMENT,
        {"spec.containers[1].depends_on[1].container: \"a\" is listed by depends_on[0] already"});
  group("unknown condition",
        [](auto& s) {
          s.mutable_containers(1)->mutable_depends_on(0)->set_condition(
              static_cast<v1::Dependency::Condition>(9));
        },
        Code::INVALID_ARGUMENT,
        {"spec.containers[1].depends_on[0].condition: 9 is not a condition"});
  group("healthy condition without a health check",
        [](auto& s) {
          s.mutable_containers(1)->mutable_depends_on(0)->set_condition(
              v1::Dependency::CONDITION_HEALTHY);
        },
        Code::INVALID_ARGUMENT,
        {"spec.containers[1].depends_on[0].condition: CONDITION_HEALTHY needs a health check"});
  group("cycle a -> b -> a",
        [](auto& s) { s.mutable_containers(0)->add_depends_on()->set_container("b"); },
        Code::INVALID_ARGUMENT, {"spec.containers[0]: dependency cycle a -> b -> a"});
  group("cycle through network_from",
        [](auto& s) {
          v1::ContainerSpec* a = s.mutable_containers(0)->mutable_spec();
          a->clear_networks();
          a->set_network_from("b");
        },
        Code::INVALID_ARGUMENT, {"spec.containers[0]: dependency cycle a -> b -> a"});
  group("cycle of three",
        [](auto& s) {
          v1::GroupContainer* c = s.add_containers();
          c->mutable_spec()->set_name("c");
          c->mutable_spec()->set_image("busybox");
          c->mutable_spec()->add_args("true");
          c->add_depends_on()->set_container("b");
          s.mutable_containers(0)->add_depends_on()->set_container("c");
        },
        Code::INVALID_ARGUMENT, {"spec.containers[0]: dependency cycle a -> c -> b -> a"});
  group("cycle of 40",
        [](auto& s) {
          s.clear_containers();
          for (int i = 0; i < 40; ++i) {
            v1::GroupContainer* c = s.add_containers();
            c->mutable_spec()->set_name(absl::StrCat("m", i));
            c->mutable_spec()->set_image("busybox");
            c->mutable_spec()->add_args("true");
            c->add_depends_on()->set_container(absl::StrCat("m", (i + 1) % 40));
          }
        },
        Code::INVALID_ARGUMENT,
        {"spec.containers[0]: dependency cycle m0 -> m1 -> ", " -> ... -> "});
  group("member name taken by a container outside the group",
        [](auto& s) {
          s.set_name("web");
          s.mutable_containers(0)->mutable_spec()->set_name("sidecar");
          s.mutable_containers(1)->mutable_depends_on(0)->set_container("sidecar");
        },
        Code::ALREADY_EXISTS,
        {"container \"web-sidecar\" exists and is not a member of group \"web\""});
  group("network name taken by a network outside the group",
        [](auto& s) {
          s.set_name("pod");
          s.clear_containers();
        },
        Code::ALREADY_EXISTS, {"network \"pod-net\" exists and is not a member of group \"pod\""});
  group("member network overlapping an existing network",
        [](auto& s) {
          s.clear_containers();
          s.mutable_networks(0)->set_subnet("10.88.1.0/24");
        },
        Code::INVALID_ARGUMENT, {"spec.networks[0].subnet", "overlaps network \"front\""});
  group("member image unknown",
        [](auto& s) {
          s.clear_networks();
          s.mutable_containers()->RemoveLast();
          s.mutable_containers(0)->mutable_spec()->clear_networks();
          s.mutable_containers(0)->mutable_spec()->set_image("nosuchimage");
        },
        Code::NOT_FOUND, {"group \"g\": container \"a\"", "image \"nosuchimage\" not found"});
  for (const auto& [label, call, says] :
       std::vector<std::tuple<std::string, std::function<grpc::Status()>, std::string>>{
           {"Delete of an unknown group",
            [this] {
              v1::DeleteGroupRequest request;
              request.set_name("nosuch");
              v1::DeleteGroupResponse response;
              return meshd().groups().Delete(Ctx().get(), request, &response);
            },
            "group \"nosuch\" not found"},
           {"Delete of \"\"",
            [this] {
              v1::DeleteGroupRequest request;
              v1::DeleteGroupResponse response;
              return meshd().groups().Delete(Ctx().get(), request, &response);
            },
            "group \"\" not found"},
           {"Get of an unknown group",
            [this] {
              v1::GetGroupRequest request;
              request.set_name("nosuch");
              v1::Group g;
              return meshd().groups().Get(Ctx().get(), request, &g);
            },
            "group \"nosuch\" not found"}}) {
    add("GroupService.Delete/Get", label, call, Code::NOT_FOUND, {says});
  }

  // ---- ImageService. ----
  auto import_path = [&](std::string what, std::string path, std::string reference, Code code,
                         std::vector<std::string> mentions) {
    v1::ImportImageRequest request;
    request.mutable_source()->set_host_path(path);
    request.mutable_source()->set_reference(reference);
    add(
        "ImageService.Import", std::move(what), [this, request] { return Import({request}); }, code,
        std::move(mentions));
  };
  {
    v1::ImportImageRequest chunk;
    chunk.set_chunk("data");
    add("ImageService.Import", "chunk before the source", [this, chunk] { return Import({chunk}); },
        Code::INVALID_ARGUMENT, {"source: the first message of an import must carry `source`"});
    add("ImageService.Import", "no message at all", [this] { return Import({}); },
        Code::INVALID_ARGUMENT, {"source: the first message of an import must carry `source`"});
    v1::ImportImageRequest neither;
    neither.mutable_source()->set_reference("x");
    add("ImageService.Import", "source without host_path or streamed",
        [this, neither] { return Import({neither}); }, Code::INVALID_ARGUMENT,
        {"source: give host_path or streamed"});
    v1::ImportImageRequest streamed;
    streamed.mutable_source()->set_streamed(true);
    add("ImageService.Import", "a second source after the first",
        [this, streamed] {
          return Import({streamed, streamed});
        },
        Code::INVALID_ARGUMENT, {"chunk: only chunks may follow the source"});
    v1::ImportImageRequest garbage;
    garbage.set_chunk("this is not a tar archive\n");
    add("ImageService.Import", "streamed archive that is not one",
        [this, streamed, garbage] {
          return Import({streamed, garbage});
        },
        Code::INVALID_ARGUMENT, {"import \""});
  }
  import_path("empty host path", "", "", Code::INVALID_ARGUMENT, {"source.host_path: is empty"});
  import_path("relative host path", "image.tar", "", Code::INVALID_ARGUMENT,
              {"source.host_path: \"image.tar\" is not an absolute path"});
  import_path("relative traversal", "../../etc/passwd", "", Code::INVALID_ARGUMENT,
              {"source.host_path: \"../../etc/passwd\" is not an absolute path"});
  import_path("absolute traversal", "/run/scratch/../../etc", "", Code::INVALID_ARGUMENT,
              {"source.host_path: \"/run/scratch/../../etc\" has a \"..\" component"});
  import_path("traversal to a file", "/run/scratch/emptydir/../../../etc/passwd", "",
              Code::INVALID_ARGUMENT, {"source.host_path: ", "has a \"..\" component"});
  import_path("host path with NUL", std::string("/run/scratch/emptydir\0/x", 24), "",
              Code::INVALID_ARGUMENT, {"source.host_path: ", "NUL byte at offset 21"});
  import_path("host path of 8 KiB", "/" + std::string(8191, 'p'), "", Code::INVALID_ARGUMENT,
              {"source.host_path: is 8192 bytes long"});
  import_path("host path that does not exist", "/no/such/image.tar", "", Code::NOT_FOUND,
              {"import \"/no/such/image.tar\"", "No such file or directory"});
  import_path("directory that is no image", "/run/scratch/emptydir", "", Code::INVALID_ARGUMENT,
              {"import \"/run/scratch/emptydir\"", "neither an OCI image layout"});
  import_path("file that is no archive", "/run/scratch/notatar", "", Code::INVALID_ARGUMENT,
              {"import \"/run/scratch/notatar\""});
  import_path("empty file", "/run/scratch/empty", "", Code::INVALID_ARGUMENT,
              {"import \"/run/scratch/empty\""});
  import_path("device", "/dev/null", "", Code::INVALID_ARGUMENT,
              {"import \"/dev/null\"", "not a directory (OCI layout) nor a file"});
  for (const std::string& reference :
       {std::string("Bad Ref"), std::string("UPPER"), std::string(":tag"), std::string("a:"),
        std::string("app@sha256:") + std::string(64, '0'), std::string(4096, 'r')}) {
    import_path("reference " + absl::CEscape(reference.substr(0, 16)), "/run/scratch/emptydir",
                reference, Code::INVALID_ARGUMENT, {"image reference \""});
  }
  for (const auto& [label, image, code, says] :
       std::vector<std::tuple<std::string, std::string, Code, std::string>>{
           {"Remove of an unknown image", "nosuchimage", Code::NOT_FOUND,
            "image \"nosuchimage\" not found"},
           {"Remove of an image in use", "busybox", Code::FAILED_PRECONDITION,
            "image \"busybox\" is used by containers"},
           {"Remove of \"\"", "", Code::INVALID_ARGUMENT, "image reference is empty"}}) {
    add("ImageService.Remove/Get", label,
        [this, image = image] {
          v1::RemoveImageRequest request;
          request.set_image(image);
          v1::RemoveImageResponse response;
          return meshd().images().Remove(Ctx().get(), request, &response);
        },
        code, {says});
  }
  for (const auto& [label, image, code, says] :
       std::vector<std::tuple<std::string, std::string, Code, std::string>>{
           {"Get of an unknown image", "nosuchimage", Code::NOT_FOUND,
            "image \"nosuchimage\" not found"},
           {"Get of \"\"", "", Code::INVALID_ARGUMENT, "image reference is empty"}}) {
    add("ImageService.Remove/Get", label,
        [this, image = image] {
          v1::GetImageRequest request;
          request.set_image(image);
          v1::Image i;
          return meshd().images().Get(Ctx().get(), request, &i);
        },
        code, {says});
  }

  // ---- NetworkService.Check and CheckGroup (meshctl check). ----
  auto check = [&](std::string what, std::function<void(v1::CheckRequest&)> change, Code code,
                   std::vector<std::string> mentions) {
    v1::CheckRequest request;
    request.set_from("web");
    request.set_to("10.88.1.1");
    change(request);
    add(
        "NetworkService.Check", std::move(what),
        [this, request] {
          v1::CheckResult result;
          return meshd().networks().Check(Ctx().get(), request, &result);
        },
        code, std::move(mentions));
  };
  check("no sender", [](auto& r) { r.clear_from(); }, Code::INVALID_ARGUMENT, {"from:"});
  check("no receiver", [](auto& r) { r.clear_to(); }, Code::INVALID_ARGUMENT, {"to:"});
  check("an unknown sender", [](auto& r) { r.set_from("nosuch"); }, Code::NOT_FOUND,
        {"\"nosuch\""});
  check("an unknown receiver", [](auto& r) { r.set_to("nosuch"); }, Code::NOT_FOUND,
        {"\"nosuch\""});
  check("a sender that is not running", [](auto& r) { r.set_from("idle"); },
        Code::FAILED_PRECONDITION, {"container \"idle\" is not running"});
  check("a TCP probe without a port",
        [](auto& r) { r.mutable_probe()->set_protocol(v1::Probe::PROTOCOL_TCP); },
        Code::INVALID_ARGUMENT, {"probe.port: 0 is not a port"});
  check("an ICMP probe with a port", [](auto& r) { r.mutable_probe()->set_port(80); },
        Code::INVALID_ARGUMENT, {"probe.port: 80 given for ICMP"});
  check("a timeout of 0", [](auto& r) { r.mutable_timeout()->set_seconds(0); },
        Code::INVALID_ARGUMENT, {"timeout: 0 is not more than 0"});
  check("a timeout of a minute", [](auto& r) { r.mutable_timeout()->set_seconds(60); },
        Code::INVALID_ARGUMENT, {"timeout: 1m is not more than 0 and at most 30s"});
  add("NetworkService.CheckGroup", "an unknown group",
      [this] {
        v1::CheckGroupRequest request;
        request.set_group("nosuch");
        v1::CheckGroupResponse response;
        return meshd().networks().CheckGroup(Ctx().get(), request, &response);
      },
      Code::NOT_FOUND, {"\"nosuch\""});
  add("NetworkService.CheckGroup", "a UDP probe of port 70000",
      [this] {
        v1::CheckGroupRequest request;
        request.set_group("nosuch");
        v1::Probe* p = request.add_probes();
        p->set_protocol(v1::Probe::PROTOCOL_UDP);
        p->set_port(70000);
        v1::CheckGroupResponse response;
        return meshd().networks().CheckGroup(Ctx().get(), request, &response);
      },
      Code::INVALID_ARGUMENT, {"probes[0].port: 70000 is not a port"});

  // ---- Invalid UTF-8 in string fields. ----
  // proto3 string fields must hold UTF-8. The C++ client sends them anyway (logging an error);
  // meshd's protobuf parser then refuses the request before any handler runs. gRPC would answer
  // INTERNAL with an empty message; meshd's interceptor (agent/server/parse_errors) makes that
  // INVALID_ARGUMENT naming the RPC and the rule. A stream's message that does not parse ends
  // the stream for the handler as if the client had stopped sending; its message says so.
  const std::string bad_utf8 =
      "b\xff"
      "d";
  // `expected`: what a unary call gets (INTERNAL, {}), or the stream handler's own message.
  auto not_utf8 = [&](std::string category, std::string what, std::function<grpc::Status()> call,
                      Code expected, std::vector<std::string> mentions) {
    if (expected == Code::INTERNAL) {
      mentions = {"/mesh.v1.", "does not parse", "must be valid UTF-8"};
    } else {
      mentions.push_back("did not parse (every string field must be valid UTF-8)");
    }
    add(std::move(category), std::move(what), std::move(call), Code::INVALID_ARGUMENT,
        std::move(mentions));
  };
  for (const auto& [field, change] :
       std::vector<std::pair<std::string, std::function<void(v1::ContainerSpec&)>>>{
           {"spec.name", [&](auto& s) { s.set_name(bad_utf8); }},
           {"spec.image", [&](auto& s) { s.set_image(bad_utf8); }},
           {"spec.args[0]", [&](auto& s) { s.set_args(0, bad_utf8); }},
           {"spec.env[0]", [&](auto& s) { s.add_env("A=" + bad_utf8); }},
           {"spec.hostname", [&](auto& s) { s.set_hostname(bad_utf8); }},
           {"spec.labels",
            [&](auto& s) { (*s.mutable_labels()->mutable_labels())["k"] = bad_utf8; }},
           {"spec.networks[0].aliases[0]",
            [&](auto& s) { s.mutable_networks(0)->add_aliases(bad_utf8); }},
           {"spec.mounts[0].source", [&](auto& s) {
              v1::Mount* m = s.add_mounts();
              m->set_source("/srv/" + bad_utf8);
              m->set_destination("/data");
            }}}) {
    v1::ContainerSpec spec = ValidContainer();
    change(spec);
    not_utf8("ContainerService.Create", "invalid UTF-8 in " + field,
             [this, spec] { return CreateContainer(spec); }, Code::INTERNAL, {});
  }
  {
    v1::NetworkSpec spec = ValidNetwork();
    spec.set_name(bad_utf8);
    not_utf8("NetworkService.Create", "invalid UTF-8 in spec.name",
             [this, spec] { return CreateNetwork(spec); }, Code::INTERNAL, {});
    v1::GroupSpec group_spec = ValidGroup();
    (*group_spec.mutable_labels()->mutable_labels())["k"] = bad_utf8;
    not_utf8("GroupService.Apply", "invalid UTF-8 in spec.labels",
             [this, group_spec] { return Apply(group_spec); }, Code::INTERNAL, {});
  }
  not_utf8("ContainerService.Kill", "invalid UTF-8 in signal", kill("idle", bad_utf8),
           Code::INTERNAL, {});
  not_utf8("ContainerService.Start", "invalid UTF-8 in name", start(bad_utf8), Code::INTERNAL, {});
  not_utf8("NetworkService.Connect/Disconnect", "invalid UTF-8 in Connect's aliases[0]",
           [this, bad_utf8] {
             v1::ConnectRequest request;
             request.set_container("web");
             request.set_network("pod-net");
             request.add_aliases(bad_utf8);
             v1::ConnectResponse response;
             return meshd().networks().Connect(Ctx().get(), request, &response);
           },
           Code::INTERNAL, {});
  not_utf8("ContainerService.Logs", "invalid UTF-8 in name",
           [this, bad_utf8] {
             v1::LogsRequest request;
             request.set_name(bad_utf8);
             return Logs(request);
           },
           Code::INTERNAL, {});
  {
    v1::ExecRequest request;
    request.mutable_start()->set_container("web");
    request.mutable_start()->add_args(bad_utf8);
    not_utf8("ContainerService.Exec", "invalid UTF-8 in start.args[0]",
             [this, request] { return Exec({request}); }, Code::INVALID_ARGUMENT,
             {"start: the first message of an exec must carry `start`"});
    v1::ImportImageRequest import;
    import.mutable_source()->set_host_path("/run/scratch/" + bad_utf8);
    not_utf8("ImageService.Import", "invalid UTF-8 in source.host_path",
             [this, import] { return Import({import}); }, Code::INVALID_ARGUMENT,
             {"source: the first message of an import must carry `source`"});
  }

  // ---- Run the table. ----
  ASSERT_GE(rows.size(), 220u);
  std::map<std::string, int> codes;
  std::map<std::string, int> categories;
  int crashes = 0, changes = 0;
  for (const Row& row : rows) {
    SCOPED_TRACE(row.category + ": " + row.what);
    grpc::Status status = row.call();
    ++codes[CodeName(status.error_code())];
    ++categories[row.category];
    EXPECT_EQ(CodeName(status.error_code()), CodeName(row.code)) << StatusText(status);
    for (const std::string& mention : row.mentions) {
      EXPECT_TRUE(absl::StrContains(status.error_message(), mention))
          << "the message does not say \"" << absl::CEscape(mention)
          << "\": " << absl::CEscape(StatusText(status).substr(0, 600));
    }
    if (!meshd().running()) {
      ++crashes;
      ADD_FAILURE() << "meshd died";
      break;
    }
    // Traces change only if something leaked: then wait for them to settle before judging.
    if (MeshTracesNow(sandbox(), kCgroupParent) != traces_before) {
      const std::string traces = Traces();
      if (traces != traces_before) {
        ++changes;
        ADD_FAILURE() << "the kernel or the state dirs changed:\n"
                      << DiffLines(traces_before, traces);
      }
    }
    if (const std::string api = ApiState(); api != api_before) {
      ++changes;
      ADD_FAILURE() << "what the API lists changed:\n" << DiffLines(api_before, api);
    }
  }

  // meshd still answers, and a valid create and remove still work; then the host as it was.
  ASSERT_TRUE(meshd().running());
  {
    v1::ContainerSpec fine = ValidContainer();
    fine.set_name("fine");
    v1::PortMapping* p = fine.add_ports();
    p->set_host_port(9000);
    p->set_container_port(80);
    grpc::Status status = CreateContainer(fine, /*start=*/true);
    ASSERT_TRUE(status.ok()) << StatusText(status);
    v1::RemoveContainerRequest request;
    request.set_name("fine");
    request.set_force(true);
    v1::RemoveContainerResponse response;
    status = meshd().containers().Remove(Ctx().get(), request, &response);
    ASSERT_TRUE(status.ok()) << StatusText(status);
  }
  EXPECT_EQ(Traces(), traces_before);
  EXPECT_EQ(ApiState(), api_before);
  absl::StatusOr<std::string> host_after = SettledHostSnapshot();
  ASSERT_TRUE(host_after.ok()) << host_after.status();
  EXPECT_TRUE(*host_after == *host_before) << DiffLines(*host_before, *host_after);

  std::vector<std::string> tally;
  for (const auto& [code, n] : codes) tally.push_back(absl::StrCat(code, "=", n));
  std::vector<std::string> by_category;
  for (const auto& [category, n] : categories) {
    by_category.push_back(absl::StrCat(category, "=", n));
  }
  std::cout << "[ SUMMARY  ] " << rows.size() << " malformed requests, " << crashes << " crashes, "
            << changes << " state changes; codes: " << absl::StrJoin(tally, ", ")
            << "; by RPC: " << absl::StrJoin(by_category, ", ") << std::endl;
}

}  // namespace
}  // namespace mesh::testing
