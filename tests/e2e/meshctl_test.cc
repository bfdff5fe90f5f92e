// meshctl end to end (issue 6): the real meshctl binary against a real meshd in the test
// sandbox, as people and scripts use it: the example specs brought up and taken down, every
// command's output (tables, and -o json|yaml parsed back), exit codes, spec errors at their
// place in the file, and the README's main command (deploy/demo.sh) as written.
//
// meshctl runs as a child process (fork+exec through ChildProcess: this process runs gRPC
// threads), its stdout and stderr written to files in the sandbox's scratch dir.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/atomic_file.h"
#include "base/child_process.h"
#include "base/unique_fd.h"
#include "base/wait.h"
#include "cli/graph.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/container/cgroup_access.h"
#include "tests/support/busybox_layer.h"
#include "tests/support/host_traces.h"
#include "tests/support/meshd_fixture.h"
#include "tests/support/sandbox.h"
#include "yaml-cpp/yaml.h"

namespace mesh::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPath[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
constexpr char kSocket[] = "/run/mesh/meshd.sock";

std::string Example(const std::string& name) {
  return absl::StrCat(MESH_SOURCE_DIR, "/deploy/examples/", name);
}

// The lines of `text` (without the empty last one).
std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(absl::StripSuffix(text, "\n"), '\n', absl::SkipEmpty());
}

// The first line of `text` containing `what`, or "".
std::string LineWith(const std::string& text, const std::string& what) {
  for (const std::string& line : Lines(text)) {
    if (absl::StrContains(line, what)) return line;
  }
  return "";
}

nlohmann::json ParseJson(const std::string& text) {
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

// A command that ran to its end: its exit code (128 + N if killed by signal N), its output.
struct Result {
  ExitStatus status;
  int code = -1;
  std::string out;
  std::string err;
};

// Pretty-prints a Result in assertion messages.
std::string Describe(const std::vector<std::string>& argv, const Result& r) {
  return absl::StrCat("$ ", absl::StrJoin(argv, " "), "\n", r.status.ToString(), "\n--- stdout\n",
                      r.out, "--- stderr\n", r.err, "---");
}

// Runs argv with `env` to its end (killed after `timeout`), stdin from `input`, stdout and
// stderr into files of the scratch dir. Files rather than pipes: a background process the
// command leaves (demo.sh's servers until its cleanup) must not keep us waiting for EOF.
Result RunToEnd(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                const std::string& input, absl::Duration timeout) {
  static int counter = 0;
  const std::string base = absl::StrCat(Sandbox::kScratchDir, "/cmd-", ++counter);
  Result result;
  if (absl::Status s = WriteFileAtomically(base + ".in", input, 0600); !s.ok()) {
    ADD_FAILURE() << s;
    return result;
  }
  UniqueFd in(open((base + ".in").c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd out(open((base + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  UniqueFd err(open((base + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!in.valid() || !out.valid() || !err.valid()) {
    ADD_FAILURE() << "open " << base << ".*: " << std::strerror(errno);
    return result;
  }
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn({.argv = argv,
                                                            .env = env,
                                                            .stdin_fd = in.get(),
                                                            .stdout_fd = out.get(),
                                                            .stderr_fd = err.get()});
  if (!child.ok()) {
    ADD_FAILURE() << child.status();
    return result;
  }
  absl::StatusOr<ExitStatus> status = child->Wait(timeout);
  if (!status.ok()) {
    ADD_FAILURE() << "$ " << absl::StrJoin(argv, " ") << ": " << status.status() << " (killed now)";
    status = child->Stop(absl::Seconds(1));
  }
  result.status = status.value_or(ExitStatus{.code = -1});
  result.code = result.status.signal != 0 ? 128 + result.status.signal : result.status.code;
  result.out = ReadFile(base + ".out").value_or("");
  result.err = ReadFile(base + ".err").value_or("");
  return result;
}

// Processes of the sandbox's pid namespace other than its init and this one: what a command
// left running. "PID cmdline" each.
std::vector<std::string> OtherProcesses() {
  std::vector<std::string> others;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    const int pid = std::stoi(name);
    if (pid == 1 || pid == getpid()) continue;
    std::string cmdline = ReadFile(absl::StrCat("/proc/", pid, "/cmdline")).value_or("");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    others.push_back(absl::StrCat(pid, " ", cmdline));
  }
  return others;
}

// meshd in the sandbox, meshctl run against it.
// DOT as meshctl graph writes it, read back token by token: `graph "NAME" {`, then
// statements ending in `;` (attribute defaults, `ID [attrs]` nodes, `ID -- ID [attrs]` edges,
// `key=value`), then `}`; quoted strings with \" escapes. Every edge joins declared nodes.
::testing::AssertionResult IsDotGraph(const std::string& dot, size_t want_nodes,
                                      size_t want_edges) {
  std::vector<std::string> tokens;
  for (size_t i = 0; i < dot.size();) {
    const char c = dot[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < dot.size() && dot[j] != '"'; ++j) {
        if (dot[j] == '\\') ++j;
      }
      if (j >= dot.size()) return ::testing::AssertionFailure() << "unterminated string";
      tokens.push_back(dot.substr(i, j + 1 - i));
      i = j + 1;
    } else if (dot.compare(i, 2, "--") == 0) {
      tokens.push_back("--");
      i += 2;
    } else if (std::strchr("{}[]=,;", c) != nullptr) {
      tokens.push_back(std::string(1, c));
      ++i;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.') {
      size_t j = i;
      while (j < dot.size() && (std::isalnum(static_cast<unsigned char>(dot[j])) || dot[j] == '_' ||
                                dot[j] == '-' || dot[j] == '.')) {
        ++j;
      }
      tokens.push_back(dot.substr(i, j - i));
      i = j;
    } else {
      return ::testing::AssertionFailure() << "unexpected character '" << c << "'";
    }
  }
  size_t t = 0;
  auto next = [&]() -> std::string { return t < tokens.size() ? tokens[t++] : ""; };
  auto peek = [&]() -> std::string { return t < tokens.size() ? tokens[t] : ""; };
  auto is_id = [](const std::string& s) {
    return !s.empty() && std::strchr("{}[]=,;-", s[0]) == nullptr;
  };
  // `[ key = value (, key = value)* ]`
  auto attributes = [&]() {
    if (next() != "[") return false;
    for (;;) {
      if (!is_id(next()) || next() != "=" || !is_id(next())) return false;
      const std::string sep = next();
      if (sep == "]") return true;
      if (sep != ",") return false;
    }
  };
  if (next() != "graph" || !is_id(next()) || next() != "{") {
    return ::testing::AssertionFailure() << "no `graph NAME {` header";
  }
  std::set<std::string> nodes;
  size_t edges = 0;
  while (peek() != "}" && !peek().empty()) {
    const std::string first = next();
    if (!is_id(first)) return ::testing::AssertionFailure() << "statement starts with " << first;
    if (peek() == "=") {
      next();
      if (!is_id(next())) return ::testing::AssertionFailure() << "bad value for " << first;
    } else if (peek() == "--") {
      next();
      const std::string second = next();
      if (!nodes.contains(first) || !nodes.contains(second)) {
        return ::testing::AssertionFailure()
               << "edge " << first << " -- " << second << " joins an undeclared node";
      }
      if (!attributes()) return ::testing::AssertionFailure() << "bad attributes on an edge";
      ++edges;
    } else {
      if (!attributes()) return ::testing::AssertionFailure() << "bad attributes of " << first;
      if (first != "node" && first != "edge") nodes.insert(first);
    }
    if (next() != ";") return ::testing::AssertionFailure() << "statement without `;`";
  }
  if (next() != "}" || t != tokens.size()) return ::testing::AssertionFailure() << "no closing }";
  if (nodes.size() != want_nodes || edges != want_edges) {
    return ::testing::AssertionFailure() << nodes.size() << " nodes and " << edges << " edges";
  }
  if (access("/usr/bin/dot", X_OK) == 0) {  // Graphviz's own parser, when it is installed
    absl::StatusOr<std::string> svg = cli::RenderSvg(dot);
    if (!svg.ok()) return ::testing::AssertionFailure() << "dot refused it: " << svg.status();
  }
  return ::testing::AssertionSuccess();
}

// Mermaid as meshctl graph writes it: a front matter title, `flowchart LR`, node lines
// (`nK[["..."]]` or `nK(["..."])`), then edge lines (`nA ---|"..."| nB`, `-.-` dashed), every
// edge between declared nodes, no raw quote inside a label.
::testing::AssertionResult IsMermaidFlowchart(const std::string& text, size_t want_nodes,
                                              size_t want_edges) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (lines.size() < 4 || lines[0] != "---" || !absl::StartsWith(lines[1], "title: ") ||
      lines[2] != "---" || lines[3] != "flowchart LR") {
    return ::testing::AssertionFailure() << "no front matter and `flowchart LR` header";
  }
  const std::regex node(R"re(  (n[0-9]+)(\[\["[^"]*"\]\]|\(\["[^"]*"\]\)))re");
  const std::regex edge(R"re(  (n[0-9]+) (---|===|-\.-)(\|"[^"]*"\|)? (n[0-9]+))re");
  std::set<std::string> nodes;
  size_t edges = 0;
  for (size_t i = 4; i < lines.size(); ++i) {
    std::smatch m;
    if (std::regex_match(lines[i], m, node)) {
      if (!nodes.insert(m[1]).second) return ::testing::AssertionFailure() << "twice: " << m[1];
    } else if (std::regex_match(lines[i], m, edge)) {
      if (!nodes.contains(m[1]) || !nodes.contains(m[4])) {
        return ::testing::AssertionFailure() << "edge to an undeclared node: " << lines[i];
      }
      ++edges;
    } else {
      return ::testing::AssertionFailure() << "not a node or an edge: " << lines[i];
    }
  }
  if (nodes.size() != want_nodes || edges != want_edges) {
    return ::testing::AssertionFailure() << nodes.size() << " nodes and " << edges << " edges";
  }
  return ::testing::AssertionSuccess();
}

class MeshctlTest : public SandboxTest {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    // A cgroup parent of our own per test: meshd's recovery removes the cgroups under its parent
    // it has no record of, and ctest -j runs other meshd tests (and these) at the same time.
    cgroup_parent_ = "mesh-test-e2e-";
    for (char c : std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())) {
      if (std::isalnum(static_cast<unsigned char>(c))) {
        cgroup_parent_ += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
    }
    cgroup_parent_.resize(std::min<size_t>(cgroup_parent_.size(), 60));
    MeshdOptions options;
    options.meshd_path = MESHD_PATH;
    options.shim_path = MESH_SHIM_PATH;
    options.socket = kSocket;
    options.extra_args = {"--cgroup-parent", cgroup_parent_};
    absl::StatusOr<std::unique_ptr<Meshd>> meshd = Meshd::Start(options);
    ASSERT_TRUE(meshd.ok()) << meshd.status();
    meshd_ = *std::move(meshd);
    clean_ = Traces();
  }
  void TearDown() override {
    if (HasFailure() && meshd_ != nullptr) std::cerr << "---- meshd log ----\n" << meshd_->Log();
    meshd_.reset();
    // Containers outlive meshd: their cgroups go here (cgroups are not namespaced, so the
    // sandbox's end would leave them), then the parent meshd made.
    if (!cgroup_parent_.empty()) runtime::DestroyCgroupParent(cgroup_parent_).IgnoreError();
    SandboxTest::TearDown();
  }

  Meshd& meshd() { return *meshd_; }

  // meshctl ARGS with MESH_HOST at our meshd and `input` on its stdin.
  Result Meshctl(std::vector<std::string> args, const std::string& input = "",
                 absl::Duration timeout = absl::Seconds(60)) {
    args.insert(args.begin(), MESHCTL_PATH);
    return RunToEnd(args, {kPath, absl::StrCat("MESH_HOST=unix://", kSocket)}, input, timeout);
  }
  // meshctl ARGS, which must exit 0: its stdout.
  std::string MustMeshctl(const std::vector<std::string>& args,
                          absl::Duration timeout = absl::Seconds(60)) {
    Result r = Meshctl(args, "", timeout);
    EXPECT_EQ(r.code, 0) << Describe(args, r);
    return r.out;
  }
  // `meshctl -o json ARGS` parsed (null if it is not JSON).
  nlohmann::json Json(std::vector<std::string> args) {
    args.insert(args.end(), {"-o", "json"});
    Result r = Meshctl(args);
    EXPECT_EQ(r.code, 0) << Describe(args, r);
    nlohmann::json json = ParseJson(r.out);
    EXPECT_FALSE(json.is_discarded()) << "not JSON: " << Describe(args, r);
    return json.is_discarded() ? nlohmann::json() : json;
  }
  // Names of every container (`ps -a -q`).
  std::vector<std::string> AllContainers() { return Lines(MustMeshctl({"ps", "-a", "-q"})); }
  // Names of every network (`net ls -o json`).
  std::vector<std::string> AllNetworks() {
    std::vector<std::string> names;
    for (const nlohmann::json& n : Json({"net", "ls"})) {
      names.push_back(n["spec"]["name"].get<std::string>());
    }
    return names;
  }
  // `meshctl ps -a -o json`: each container's JSON by name.
  std::map<std::string, nlohmann::json> ContainersByName() {
    std::map<std::string, nlohmann::json> by_name;
    for (const nlohmann::json& c : Json({"ps", "-a"})) {
      by_name[c["spec"]["name"].get<std::string>()] = c;
    }
    return by_name;
  }

  // A spec file in the scratch dir.
  static std::string WriteSpec(const std::string& name, const std::string& yaml) {
    const std::string path = absl::StrCat(Sandbox::kScratchDir, "/", name);
    EXPECT_TRUE(WriteFileAtomically(path, yaml, 0644).ok());
    return path;
  }

  // What of the kernel and of meshd's dirs containers and networks leave (host_traces.h).
  std::string Traces() { return MeshTraces(sandbox(), cgroup_parent_); }
  // The traces equal `want`; else a failure naming what is left, with each leftover cgroup's
  // processes and creation time, to tell a leak from a cgroup made again.
  void ExpectTraces(const std::string& want) {
    const std::string now = Traces();
    if (now == want) return;
    std::string details;
    for (const std::string& line : Lines(now)) {
      if (!absl::StartsWith(line, "cgroup ") || absl::StrContains(want, line)) continue;
      const std::string dir = line.substr(7);
      struct stat st {};
      stat(dir.c_str(), &st);
      std::string procs = ReadFile(dir + "/cgroup.procs").value_or("?");
      std::replace(procs.begin(), procs.end(), '\n', ' ');
      absl::StrAppend(
          &details, dir, ": made ",
          absl::FormatTime("%H:%M:%E6S", absl::TimeFromTimespec(st.st_mtim), absl::UTCTimeZone()),
          ", processes [", procs, "]\n");
    }
    ADD_FAILURE() << "left behind:\n"
                  << now << "\nexpected:\n"
                  << want << "\n"
                  << details << "now "
                  << absl::FormatTime("%H:%M:%E6S", absl::Now(), absl::UTCTimeZone());
  }

  std::string cgroup_parent_;
  std::unique_ptr<Meshd> meshd_;
  std::string clean_;  // the traces right after meshd started
};

// Issue 6 / README: web.yaml up, looked at with every command, used, and taken down.
TEST_F(MeshctlTest, UpWebExampleInspectExecLogsPublishedPortAndDown) {
  const std::vector<std::string> up = {"up", "-f", Example("web.yaml"), "--wait"};
  Result r = Meshctl(up, "", absl::Seconds(90));
  ASSERT_EQ(r.code, 0) << Describe(up, r);
  // Live progress names every member, then the group.
  EXPECT_THAT(r.out, ContainsRegex("network +front +created"));
  EXPECT_THAT(r.out, ContainsRegex("container +server +created"));
  EXPECT_THAT(r.out, ContainsRegex("container +client +created"));
  EXPECT_THAT(r.out, HasSubstr("group web is up"));

  // ps: the table, and the same as JSON.
  const std::string ps = MustMeshctl({"ps"});
  const std::string server_row = LineWith(ps, "web-server");
  const std::string client_row = LineWith(ps, "web-client");
  EXPECT_THAT(server_row, ContainsRegex("web-server +busybox +running"));
  EXPECT_THAT(server_row, HasSubstr("10.89.10.10"));
  EXPECT_THAT(server_row, HasSubstr("0.0.0.0:8080->80/tcp"));
  EXPECT_THAT(server_row, HasSubstr("(healthy)"));
  EXPECT_THAT(client_row, ContainsRegex("web-client +busybox +running"));
  EXPECT_THAT(client_row, HasSubstr("10.89.10."));
  EXPECT_THAT(Lines(ps)[0], ContainsRegex("^NAME +IMAGE +STATE +STATUS +ADDRESSES +PORTS +GROUP"));
  std::map<std::string, nlohmann::json> containers = ContainersByName();
  ASSERT_EQ(containers.size(), 2u) << ps;
  std::string client_ip;
  for (const std::string name : {"web-server", "web-client"}) {
    const nlohmann::json& c = containers[name];
    EXPECT_EQ(c.value("state", ""), "CONTAINER_STATE_RUNNING") << c.dump();
    EXPECT_EQ(c.value("group", ""), "web") << c.dump();
    EXPECT_GT(c.value("pid", 0), 0) << c.dump();
    ASSERT_EQ(c["addresses"].size(), 1u) << c.dump();
  }
  EXPECT_EQ(containers["web-server"]["addresses"][0].value("ip", ""), "10.89.10.10");
  client_ip = containers["web-client"]["addresses"][0].value("ip", "");
  EXPECT_TRUE(absl::StartsWith(client_ip, "10.89.10.")) << client_ip;

  // inspect: a JSON list of the full object.
  nlohmann::json inspected = ParseJson(MustMeshctl({"inspect", "web-server"}));
  ASSERT_TRUE(inspected.is_array() && inspected.size() == 1) << inspected.dump();
  EXPECT_EQ(inspected[0]["spec"]["name"], "web-server");
  EXPECT_EQ(inspected[0]["spec"]["ports"][0]["host_port"], 8080);
  nlohmann::json network = ParseJson(MustMeshctl({"inspect", "--type", "network", "web-front"}));
  ASSERT_TRUE(network.is_array() && network.size() == 1) << network.dump();
  EXPECT_EQ(network[0]["spec"]["subnet"], "10.89.10.0/24");

  // group status: each member where it is.
  const std::string status = MustMeshctl({"group", "status", "web"});
  EXPECT_THAT(status, HasSubstr("group web, applied"));
  EXPECT_THAT(status, ContainsRegex("network +front"));
  EXPECT_THAT(status, ContainsRegex("container +server +[a-z]+ +running \\(healthy\\)"));
  EXPECT_THAT(status, ContainsRegex("container +client +[a-z]+ +running"));
  EXPECT_THAT(MustMeshctl({"group", "ls"}), ContainsRegex("\nweb +1 +2 +2 "));

  // exec: output and exit codes, the command's own and meshctl's.
  const std::vector<std::string> fetch = {"exec", "web-client",         "wget", "-q", "-O",
                                          "-",    "http://10.89.10.10/"};
  r = Meshctl(fetch);
  EXPECT_EQ(r.code, 0) << Describe(fetch, r);
  EXPECT_EQ(r.out, "hello from mesh (server)\n") << Describe(fetch, r);
  r = Meshctl({"exec", "web-client", "sh", "-c", "echo to-stderr >&2; exit 7"});
  EXPECT_EQ(r.code, 7);
  EXPECT_EQ(r.err, "to-stderr\n");
  EXPECT_EQ(Meshctl({"exec", "web-server", "cat", "/etc/hostname"}).out, "server\n");
  EXPECT_EQ(Meshctl({"exec", "web-client", "/no/such/program"}).code, 127);
  // exec -i: stdin reaches the command.
  r = Meshctl({"exec", "-i", "web-client", "tr", "a-z", "A-Z"}, "piped in\n");
  EXPECT_EQ(r.code, 0) << Describe({"exec", "-i", "web-client", "tr", "a-z", "A-Z"}, r);
  EXPECT_EQ(r.out, "PIPED IN\n");

  // logs: the client fetched the page; the server logged the client's requests (httpd -v, on
  // stderr).
  r = Meshctl({"logs", "web-client"});
  EXPECT_EQ(r.code, 0) << Describe({"logs", "web-client"}, r);
  EXPECT_THAT(r.out, HasSubstr("hello from mesh (server)"));
  EXPECT_THAT(r.out, Not(HasSubstr("server not reachable")));
  r = Meshctl({"logs", "web-server"});
  EXPECT_THAT(r.out + r.err, HasSubstr(client_ip)) << Describe({"logs", "web-server"}, r);

  // The published port answers from the outside world, and the server's address from the host.
  EXPECT_EQ(sandbox().HttpGet(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080).value_or("?"),
            "hello from mesh (server)\n");
  EXPECT_EQ(sandbox().HttpGet(Sandbox::Ns::kHost, "10.89.10.10", 80).value_or("?"),
            "hello from mesh (server)\n");

  // down: everything of the group goes, the kernel and meshd's dirs are as before.
  r = Meshctl({"down", "web"});
  EXPECT_EQ(r.code, 0) << Describe({"down", "web"}, r);
  EXPECT_THAT(r.out, HasSubstr("removed container server"));
  EXPECT_THAT(r.out, HasSubstr("removed container client"));
  EXPECT_THAT(r.out, HasSubstr("removed network front"));
  EXPECT_THAT(AllContainers(), ::testing::IsEmpty());
  EXPECT_THAT(AllNetworks(), Not(::testing::Contains("web-front")));
  EXPECT_THAT(Json({"group", "ls"}), ::testing::IsEmpty());
  ExpectTraces(clean_);
  EXPECT_FALSE(
      sandbox()
          .WaitForPort(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080, absl::Milliseconds(300))
          .ok());
  // A second down: the group is gone, and says so.
  r = Meshctl({"down", "web"});
  EXPECT_EQ(r.code, 1) << Describe({"down", "web"}, r);
  EXPECT_THAT(r.err, HasSubstr("web"));
}

// Apply twice writes nothing the second time (DESIGN.md decision 8), and `up` says so for
// each member.
TEST_F(MeshctlTest, SecondUpReportsEveryMemberUnchangedAndRestartsNothing) {
  const std::string spec = WriteSpec("twice.yaml", R"(name: twice
networks:
  net:
    subnet: 10.89.20.0/24
containers:
  first:
    image: busybox
    init: true
    command: sleep 2147483647
    networks: [net]
  second:
    image: busybox
    init: true
    command: sleep 2147483647
    networks: [net]
    depends_on: [first]
)");
  Result r = Meshctl({"up", "-f", spec, "--wait"});
  ASSERT_EQ(r.code, 0) << Describe({"up", spec}, r);
  std::map<std::string, nlohmann::json> before = ContainersByName();
  ASSERT_EQ(before.size(), 2u);
  const std::string traces = Traces();

  r = Meshctl({"up", "-f", spec, "--wait"});
  ASSERT_EQ(r.code, 0) << Describe({"up", spec}, r);
  EXPECT_THAT(r.out, ContainsRegex("network +net +unchanged")) << r.out;
  EXPECT_THAT(r.out, ContainsRegex("container +first +unchanged")) << r.out;
  EXPECT_THAT(r.out, ContainsRegex("container +second +unchanged")) << r.out;
  EXPECT_THAT(r.out, Not(ContainsRegex("created|recreated|started|removed"))) << r.out;
  std::map<std::string, nlohmann::json> after = ContainersByName();
  for (const std::string name : {"twice-first", "twice-second"}) {
    EXPECT_EQ(after[name]["pid"], before[name]["pid"]) << name << " was restarted";
    EXPECT_EQ(after[name]["started_at"], before[name]["started_at"]) << name;
  }
  ExpectTraces(traces);
  EXPECT_EQ(Meshctl({"down", "twice"}).code, 0);
  ExpectTraces(clean_);
}

// Ctrl-C during `up`: meshctl stops at once with 130 and says how to go on; the group stays as
// far as it got, and a second `up` finishes it without redoing what was done.
TEST_F(MeshctlTest, UpInterruptedByCtrlCStopsCleanlyAndASecondUpFinishesIt) {
  const std::string out_path = absl::StrCat(Sandbox::kScratchDir, "/up.out");
  const std::string err_path = absl::StrCat(Sandbox::kScratchDir, "/up.err");
  UniqueFd out(open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  UniqueFd err(open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  ASSERT_TRUE(out.valid() && err.valid());
  // The client waits for the server's first health check (5 s): the moment to interrupt.
  absl::StatusOr<ChildProcess> up = ChildProcess::Spawn(
      {.argv = {MESHCTL_PATH, "up", "-f", Example("web.yaml")},
       .env = std::vector<std::string>{kPath, absl::StrCat("MESH_HOST=unix://", kSocket)},
       .stdout_fd = out.get(),
       .stderr_fd = err.get()});
  ASSERT_TRUE(up.ok()) << up.status();
  ASSERT_TRUE(WaitFor(
                  [&] {
                    return absl::StrContains(ReadFile(out_path).value_or(""),
                                             "waiting for server to be healthy\n");
                  },
                  absl::Seconds(10), "up to wait for the server")
                  .ok())
      << ReadFile(out_path).value_or("") << ReadFile(err_path).value_or("");
  ASSERT_TRUE(up->Signal(SIGINT).ok());
  absl::StatusOr<ExitStatus> ended = up->Wait(absl::Seconds(3));
  ASSERT_TRUE(ended.ok()) << "meshctl up still runs after SIGINT";
  EXPECT_EQ(ended->code, 130) << ended->ToString();
  EXPECT_THAT(ReadFile(err_path).value_or(""),
              HasSubstr("interrupted: group \"web\" stays as far as it got"));
  // The server was made and runs; the client was not made.
  std::map<std::string, nlohmann::json> containers = ContainersByName();
  ASSERT_TRUE(containers.contains("web-server")) << AllContainers().size();
  EXPECT_FALSE(containers.contains("web-client"));
  const nlohmann::json server_pid = containers["web-server"]["pid"];

  const std::vector<std::string> again = {"up", "-f", Example("web.yaml"), "--wait"};
  Result r = Meshctl(again, "", absl::Seconds(90));
  ASSERT_EQ(r.code, 0) << Describe(again, r);
  EXPECT_THAT(r.out, ContainsRegex("container +client +created"));
  EXPECT_THAT(r.out, Not(ContainsRegex("container +server +(created|recreated)")));
  containers = ContainersByName();
  EXPECT_EQ(containers["web-server"]["pid"], server_pid) << "the server was made again";
  EXPECT_EQ(containers["web-client"].value("state", ""), "CONTAINER_STATE_RUNNING");
  EXPECT_EQ(Meshctl({"down", "web"}).code, 0);
  ExpectTraces(clean_);
}

// lab.yaml: two internal LANs joined by a router; clients reach the other LAN through it, and
// nothing else.
TEST_F(MeshctlTest, UpLabExampleClientsReachAcrossTheRouter) {
  const std::vector<std::string> up = {"up", "-f", Example("lab.yaml"), "--wait"};
  Result r = Meshctl(up, "", absl::Seconds(90));
  ASSERT_EQ(r.code, 0) << Describe(up, r);
  for (const char* member : {"router", "a1", "a2", "b1", "b2"}) {
    EXPECT_THAT(r.out, ContainsRegex(absl::StrCat("container +", member, " +created")));
  }
  EXPECT_THAT(r.out, ContainsRegex("network +lan-a +created"));
  EXPECT_THAT(r.out, ContainsRegex("network +lan-b +created"));
  std::map<std::string, nlohmann::json> containers = ContainersByName();
  ASSERT_EQ(containers.size(), 5u);
  for (const auto& [name, c] : containers) {
    EXPECT_EQ(c.value("state", ""), "CONTAINER_STATE_RUNNING") << name;
  }
  ASSERT_EQ(containers["lab-router"]["addresses"].size(), 2u);

  // Across the router, both ways; the route goes through it.
  for (const auto& [from, to] :
       std::vector<std::pair<std::string, std::string>>{{"lab-a1", "10.77.2.11"},
                                                        {"lab-a2", "10.77.2.12"},
                                                        {"lab-b1", "10.77.1.11"},
                                                        {"lab-b2", "10.77.1.12"},
                                                        {"lab-a1", "10.77.1.12"}}) {
    const std::vector<std::string> ping = {"exec", from, "ping", "-c", "1", "-W", "2", to};
    r = Meshctl(ping);
    EXPECT_EQ(r.code, 0) << Describe(ping, r);
    EXPECT_THAT(r.out, HasSubstr("1 packets received")) << Describe(ping, r);
  }
  const std::vector<std::string> trace = {"exec", "lab-b1", "traceroute", "-n",        "-w",
                                          "1",    "-m",     "4",          "10.77.1.11"};
  r = Meshctl(trace);
  EXPECT_EQ(r.code, 0) << Describe(trace, r);
  EXPECT_THAT(r.out, ContainsRegex("1 +10\\.77\\.2\\.254")) << Describe(trace, r);
  EXPECT_THAT(r.out, ContainsRegex("2 +10\\.77\\.1\\.11")) << Describe(trace, r);
  // The routes of the spec, as the kernel has them: a1 the other LAN, a2 everything.
  EXPECT_THAT(Meshctl({"exec", "lab-a1", "ip", "route"}).out,
              HasSubstr("10.77.2.0/24 via 10.77.1.254 dev eth0"));
  EXPECT_THAT(Meshctl({"exec", "lab-a2", "ip", "route"}).out,
              HasSubstr("default via 10.77.1.254 dev eth0"));
  EXPECT_THAT(Meshctl({"exec", "lab-a2", "ip", "route"}).out, Not(HasSubstr("via 10.77.1.1 ")));
  // The router forwards because it said so itself.
  EXPECT_EQ(Meshctl({"exec", "lab-router", "cat", "/proc/sys/net/ipv4/ip_forward"}).out, "1\n");
  // check says the same, and which rule let the probe through the host (the host bridges it
  // twice: into the router, and out of it to lan-b).
  const std::vector<std::string> across = {"check", "lab-a1", "lab-b1"};
  r = Meshctl(across);
  EXPECT_EQ(r.code, 0) << Describe(across, r);
  EXPECT_THAT(r.out, HasSubstr("lab-a1 -> lab-b1 (10.77.2.11) icmp: reachable, echo reply"));
  EXPECT_THAT(r.out, HasSubstr("accepted by rule \"inside one network\" (inet mesh forward"));
  // Without its route through the router, a1's probe goes to its gateway, the host, which
  // routes nothing between internal networks: the trace shows it never reached a filter chain.
  // (The container itself may not change its routes: no CAP_NET_ADMIN; the test enters its
  // namespace from outside.)
  const std::string a1_pid = absl::StrCat(containers["lab-a1"].value("pid", 0));
  ASSERT_TRUE(sandbox()
                  .Check(Sandbox::Ns::kHost,
                         {"nsenter", "-t", a1_pid, "-n", "ip", "route", "del", "10.77.2.0/24"})
                  .ok());
  r = Meshctl(across);
  EXPECT_EQ(r.code, 1) << Describe(across, r);
  EXPECT_THAT(r.out, HasSubstr("lab-a1 -> lab-b1 (10.77.2.11) icmp: no answer after"));
  EXPECT_THAT(r.out, HasSubstr("no filter rule of the host met it")) << Describe(across, r);
  ASSERT_TRUE(sandbox()
                  .Check(Sandbox::Ns::kHost, {"nsenter", "-t", a1_pid, "-n", "ip", "route", "add",
                                              "10.77.2.0/24", "via", "10.77.1.254"})
                  .ok());
  r = Meshctl(across);
  EXPECT_EQ(r.code, 0) << Describe(across, r);
  // Internal LANs: neither the outside world nor the host's addresses are reachable, only the
  // LAN's own gateway.
  r = Meshctl({"exec", "lab-b1", "ping", "-c", "1", "-W", "1", "203.0.113.254"});
  EXPECT_NE(r.code, 0) << "reached wan from an internal LAN: " << r.out;
  r = Meshctl({"exec", "lab-b1", "ping", "-c", "1", "-W", "1", Sandbox::kHostAddress});
  EXPECT_NE(r.code, 0) << "reached the host's address from an internal LAN: " << r.out;
  for (int i = 0; i < 3; ++i) {  // a first packet may wait for ARP on a loaded machine
    r = Meshctl({"exec", "lab-b1", "ping", "-c", "1", "-W", "2", "10.77.2.1"});
    if (r.code == 0) break;
  }
  EXPECT_EQ(r.code, 0) << "the LAN's gateway: " << r.out;
  // The clients' own loops see the other side (b2 started last: its first ping already
  // finds a2).
  EXPECT_TRUE(WaitFor(
                  [&] {
                    return absl::StrContains(Meshctl({"logs", "lab-b2"}).out, " 0% packet loss");
                  },
                  absl::Seconds(12), "lab-b2 pings a2")
                  .ok())
      << Meshctl({"logs", "lab-b2"}).out;

  // The topology, as DOT (read back, and rendered by Graphviz when it is installed) and as
  // Mermaid: 2 networks, 5 members, 6 attachments.
  const std::string dot = MustMeshctl({"graph", "lab"});
  EXPECT_TRUE(IsDotGraph(dot, 7, 6)) << dot;
  EXPECT_THAT(dot,
              HasSubstr(R"("member/router" -- "network/lan-a" [label="eth0 10.77.1.254/24"];)"));
  EXPECT_THAT(dot,
              HasSubstr(R"("member/router" -- "network/lan-b" [label="eth1 10.77.2.254/24"];)"));
  const std::string mermaid = MustMeshctl({"graph", "lab", "-o", "mermaid"});
  EXPECT_TRUE(IsMermaidFlowchart(mermaid, 7, 6)) << mermaid;
  r = Meshctl({"graph", "lab", "-o", "svg"});
  if (access("/usr/bin/dot", X_OK) == 0) {
    EXPECT_EQ(r.code, 0) << Describe({"graph", "lab", "-o", "svg"}, r);
    EXPECT_THAT(r.out, HasSubstr("<svg"));
  } else {
    EXPECT_EQ(r.code, 1) << Describe({"graph", "lab", "-o", "svg"}, r);
    EXPECT_THAT(r.err, HasSubstr("apt install graphviz"));
  }
  r = Meshctl({"graph", "lab", "-o", "json"});
  EXPECT_EQ(r.code, 2) << Describe({"graph", "lab", "-o", "json"}, r);
  EXPECT_EQ(Meshctl({"graph", "nosuch"}).code, 1);

  r = Meshctl({"down", "lab"});
  EXPECT_EQ(r.code, 0) << Describe({"down", "lab"}, r);
  EXPECT_THAT(AllContainers(), ::testing::IsEmpty());
  EXPECT_THAT(AllNetworks(), ::testing::IsEmpty());
  ExpectTraces(clean_);
}

// deploy/examples/three-tier.yaml: the reachability matrix between web, app and db, as
// `meshctl check --matrix` probes it, is exactly the policy's (web -> app, app -> db, nothing
// else); `check` names the rule that decided for a denied and an allowed pair, from the
// kernel's trace; the published web port still answers from outside; the policy holds after
// kill -9 and a restart of meshd; down leaves nothing.
TEST_F(MeshctlTest, UpThreeTierExampleReachesExactlyWhatThePolicyAllows) {
  const std::vector<std::string> up = {"up", "-f", Example("three-tier.yaml"), "--wait"};
  Result r = Meshctl(up, "", absl::Seconds(90));
  ASSERT_EQ(r.code, 0) << Describe(up, r);
  // Rows send, columns receive; a cell lists the probes that reached the receiver. The probes
  // are the policy's ports, the published container port and ICMP.
  const std::string want =
      "FROM \\ TO  db        app       web\n"
      "db         \\         -         -\n"
      "app        5432/tcp  \\         -\n"
      "web        -         8080/tcp  \\\n"
      "probes: icmp 80/tcp 5432/tcp 8080/tcp; a cell lists those that reached TO (answered or "
      "refused), - none\n";
  const std::vector<std::string> matrix = {"check", "tiers", "--matrix"};
  r = Meshctl(matrix);
  EXPECT_EQ(r.code, 0) << Describe(matrix, r);
  EXPECT_EQ(r.out, want) << Describe(matrix, r);
  // --why: each probe with the rule that decided it.
  const std::vector<std::string> why = {"check", "tiers", "--matrix", "--why"};
  r = Meshctl(why);
  EXPECT_THAT(r.out, ContainsRegex("web -> db +5432/tcp +blocked +dropped by \"policy tiers: "
                                   "default deny inside a network\""))
      << Describe(why, r);
  EXPECT_THAT(r.out, ContainsRegex("web -> app +8080/tcp +reachable +accepted by \"policy tiers "
                                   "rule 1: web calls the app\""))
      << Describe(why, r);
  // The rules' own words, from the trace of the probe: a denied pair and an allowed one.
  const std::vector<std::string> denied = {"check", "tiers-web", "tiers-db", "5432/tcp"};
  r = Meshctl(denied);
  EXPECT_EQ(r.code, 1) << Describe(denied, r);
  EXPECT_THAT(r.out, HasSubstr("tiers-web -> tiers-db (10.79.0.30) 5432/tcp: blocked"));
  EXPECT_THAT(r.out, HasSubstr("dropped by rule \"policy tiers: default deny inside a network\" "
                               "(inet mesh forward, handle "));
  const std::vector<std::string> allowed = {"check", "tiers-web", "tiers-app", "8080/tcp"};
  r = Meshctl(allowed);
  EXPECT_EQ(r.code, 0) << Describe(allowed, r);
  EXPECT_THAT(r.out,
              HasSubstr("tiers-web -> tiers-app (10.79.0.20) 8080/tcp: reachable, connected"));
  EXPECT_THAT(r.out, HasSubstr("accepted by rule \"policy tiers rule 1: web calls the app\" "
                               "(inet mesh forward, handle "));
  // The same answer for scripts, and the probe agrees with a real client.
  nlohmann::json json = nlohmann::json::parse(
      MustMeshctl({"check", "tiers-app", "tiers-db", "tcp/5432", "-o", "json"}));
  EXPECT_EQ(json.value("outcome", ""), "OUTCOME_OPEN") << json.dump();
  EXPECT_EQ(json["decision"].value("rule", ""), "policy tiers rule 2: the app queries the db");
  EXPECT_EQ(json["decision"].value("verdict", ""), "VERDICT_ACCEPTED");
  EXPECT_EQ(Meshctl({"exec", "tiers-app", "wget", "-qO-", "http://10.79.0.30:5432/"}).out, "db\n");
  r = Meshctl({"exec", "tiers-db", "timeout", "2", "wget", "-qO-", "http://10.79.0.20:8080/"});
  EXPECT_NE(r.code, 0) << "db reached app: " << r.out;
  ASSERT_TRUE(sandbox().WaitForPort(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080).ok());
  EXPECT_EQ(sandbox().HttpGet(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8080).value_or("?"),
            "web\n");
  // The rules carry their descriptions into mesh's table.
  absl::StatusOr<std::string> table =
      sandbox().Check(Sandbox::Ns::kHost, {"nft", "list", "table", "inet", "mesh"});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_THAT(*table, HasSubstr("comment \"policy tiers rule 1: web calls the app\""));
  EXPECT_THAT(*table, HasSubstr("comment \"policy tiers: default deny inside a network\""));
  EXPECT_TRUE(IsDotGraph(MustMeshctl({"graph", "tiers"}), 4, 3));
  EXPECT_TRUE(IsMermaidFlowchart(MustMeshctl({"graph", "tiers", "-o", "mermaid"}), 4, 3));

  meshd_->Kill9();
  ASSERT_TRUE(meshd_->Restart().ok());
  r = Meshctl(matrix);
  EXPECT_EQ(r.out, want) << Describe(matrix, r);

  r = Meshctl({"down", "tiers"});
  EXPECT_EQ(r.code, 0) << Describe({"down", "tiers"}, r);
  EXPECT_THAT(AllContainers(), ::testing::IsEmpty());
  ExpectTraces(clean_);
}

// A policy that names another group ("group:front"): that group's members reach the api
// across the isolation between networks, before the group exists and as it grows (the policy
// follows its members), after kill -9 and a restart of meshd, and no more once it is down; a
// third group's member stays isolated. check names the rule each time.
TEST_F(MeshctlTest, PolicyNamingAnotherGroupFollowsItsMembers) {
  const std::string back = WriteSpec("back.yaml", R"(name: back
networks:
  back: {subnet: 10.81.2.0/24}
containers:
  api:
    image: busybox
    init: true
    command: sh -c 'mkdir -p /www && echo api > /www/index.html && exec httpd -f -p 8080 -h /www'
    networks:
      back: {ipv4_address: 10.81.2.10}
policy:
  default: deny
  rules:
    - {action: allow, from: "group:front", to: api, ports: [tcp/8080], description: the front calls the api}
)");
  auto sleeper = [](const std::string& name, const std::string& network,
                    const std::string& address) {
    return absl::StrCat("  ", name, ":\n    image: busybox\n    init: true\n",
                        "    command: [sleep, \"2147483647\"]\n    networks:\n      ", network,
                        ": {ipv4_address: ", address, "}\n");
  };
  const std::string front_one = WriteSpec(
      "front.yaml", absl::StrCat("name: front\nnetworks:\n  front: {subnet: 10.81.1.0/24}\n",
                                 "containers:\n", sleeper("web", "front", "10.81.1.10")));
  const std::string front_two = WriteSpec(
      "front2.yaml",
      absl::StrCat("name: front\nnetworks:\n  front: {subnet: 10.81.1.0/24}\n", "containers:\n",
                   sleeper("web", "front", "10.81.1.10"), sleeper("web2", "front", "10.81.1.11")));
  const std::string stranger =
      WriteSpec("stranger.yaml", absl::StrCat("name: stranger\nnetworks:\n  elsewhere: {subnet: "
                                              "10.81.3.0/24}\ncontainers:\n",
                                              sleeper("x", "elsewhere", "10.81.3.10")));
  for (const std::string& spec : {back, front_one, stranger}) {
    const std::vector<std::string> up = {"up", "-f", spec, "--wait"};
    Result r = Meshctl(up, "", absl::Seconds(90));
    ASSERT_EQ(r.code, 0) << Describe(up, r);
  }
  auto check = [&](const std::string& from) {
    return Meshctl({"check", from, "10.81.2.10", "8080/tcp"});
  };
  const std::string allowed =
      "accepted by rule \"policy back rule 1: the front calls the api\" (inet mesh forward";
  // Made after the policy that names its group: front's member is let in all the same.
  Result r = check("front-web");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("front-web -> 10.81.2.10 8080/tcp: reachable, connected"));
  EXPECT_THAT(r.out, HasSubstr(allowed));
  EXPECT_EQ(Meshctl({"exec", "front-web", "wget", "-qO-", "http://10.81.2.10:8080/"}).out, "api\n");
  r = check("stranger-x");
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("dropped by rule \"networks are isolated from each other\""));
  // front grows: its new member is in the policy before it starts.
  r = Meshctl({"up", "-f", front_two, "--wait"}, "", absl::Seconds(90));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  r = check("front-web2");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(allowed));

  meshd_->Kill9();
  ASSERT_TRUE(meshd_->Restart().ok());
  r = check("front-web2");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(allowed));

  // front goes: its addresses leave back's policy.
  const std::vector<std::string> from_set = {"nft",  "list", "set",
                                             "inet", "mesh", "policy/back/0/from"};
  EXPECT_THAT(sandbox().Check(Sandbox::Ns::kHost, from_set).value_or(""), HasSubstr("10.81.1.11"));
  r = Meshctl({"down", "front"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  absl::StatusOr<std::string> left = sandbox().Check(Sandbox::Ns::kHost, from_set);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_THAT(*left, Not(HasSubstr("10.81.1.1"))) << *left;
  for (const char* group : {"back", "stranger"}) {
    r = Meshctl({"down", group});
    EXPECT_EQ(r.code, 0) << r.out << r.err;
  }
  EXPECT_THAT(AllContainers(), ::testing::IsEmpty());
  ExpectTraces(clean_);
}

// deploy/examples/ring.yaml: four routers, four point-to-point links, static routes through
// them. Both ways round the ring work; a route the spec takes away (re-applied) is gone at once,
// and only the link it went with is made again.
TEST_F(MeshctlTest, UpRingExampleRoutesRoundTheRing) {
  const std::vector<std::string> up = {"up", "-f", Example("ring.yaml"), "--wait"};
  Result r = Meshctl(up, "", absl::Seconds(90));
  ASSERT_EQ(r.code, 0) << Describe(up, r);
  EXPECT_THAT(r.out, ContainsRegex("link +r4:eth1--r1:eth2 +created")) << r.out;
  auto reaches = [&](const std::string& from, const std::string& to) {
    for (int i = 0; i < 3; ++i) {  // a first packet may wait for ARP on a loaded machine
      if (Meshctl({"exec", from, "ping", "-c", "1", "-W", "2", to}).code == 0) return true;
    }
    return false;
  };
  // r1 to r3: on r3-r4's link through r4, on r2-r3's through r2.
  EXPECT_TRUE(reaches("ring-r1", "10.78.34.1"));
  EXPECT_TRUE(reaches("ring-r1", "10.78.23.2"));
  const std::vector<std::string> trace = {"exec", "ring-r1", "traceroute", "-n",        "-w",
                                          "1",    "-m",      "4",          "10.78.34.1"};
  r = Meshctl(trace);
  EXPECT_THAT(r.out, ContainsRegex("1 +10\\.78\\.41\\.1")) << Describe(trace, r);
  EXPECT_THAT(r.out, ContainsRegex("2 +10\\.78\\.34\\.1")) << Describe(trace, r);
  EXPECT_TRUE(reaches("ring-r2", "10.78.41.1"));  // and the other diagonal
  EXPECT_TRUE(IsDotGraph(MustMeshctl({"graph", "ring"}), 4, 4));
  EXPECT_TRUE(IsMermaidFlowchart(MustMeshctl({"graph", "ring", "-o", "mermaid"}), 4, 4));
  // meshctl capture on r3's end of the r3-r4 link while r1 pings across the ring: a pcap file
  // of exactly the two echo requests asked for, from tcpdump in r3's namespace.
  const std::string pcap = absl::StrCat(Sandbox::kScratchDir, "/r3.pcap");
  const std::vector<std::string> capture = {
      "capture", "ring-r3", "eth1", "-w",  pcap,
      "-c",      "2",       "-d",   "20s", "icmp[icmptype] == icmp-echo"};
  std::atomic<bool> captured = false;
  Result capture_result;
  std::thread capturing([&] {
    capture_result = Meshctl(capture, "", absl::Seconds(40));
    captured = true;
  });
  for (int i = 0; i < 20 && !captured; ++i) {
    Meshctl({"exec", "ring-r1", "ping", "-c", "1", "-W", "1", "10.78.34.1"});
  }
  capturing.join();
  EXPECT_EQ(capture_result.code, 0) << Describe(capture, capture_result);
  EXPECT_THAT(capture_result.err, HasSubstr("listening on eth1"));
  EXPECT_THAT(capture_result.err, HasSubstr("2 packets captured"));
  absl::StatusOr<std::string> read =
      sandbox().Check(Sandbox::Ns::kHost, {"tcpdump", "-n", "-r", pcap});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(std::count(read->begin(), read->end(), '\n'), 2) << *read;
  EXPECT_THAT(*read, HasSubstr("10.78.41.2 > 10.78.34.1: ICMP echo request"));

  // The members' interfaces are the links' ends, with their addresses.
  EXPECT_THAT(Meshctl({"exec", "ring-r3", "ip", "-o", "addr"}).out,
              ::testing::AllOf(ContainsRegex("eth1 +inet 10\\.78\\.34\\.1/30"),
                               ContainsRegex("eth2 +inet 10\\.78\\.23\\.2/30")));

  // r1 without its route to 10.78.34.0/30: only the link that route went with is made again,
  // no container is, and that link is out of r1's reach.
  absl::StatusOr<std::string> ring = ReadFile(Example("ring.yaml"));
  ASSERT_TRUE(ring.ok());
  const std::string cut =
      WriteSpec("ring-cut.yaml",
                absl::StrReplaceAll(*ring, {{"routes: [\"10.78.23.0/30 via 10.78.12.2\", "
                                             "\"10.78.34.0/30 via 10.78.41.1\"]",
                                             "routes: [\"10.78.23.0/30 via 10.78.12.2\"]"}}));
  r = Meshctl({"up", "-f", cut, "--wait"}, "", absl::Seconds(90));
  ASSERT_EQ(r.code, 0) << Describe({"up", "-f", cut}, r);
  EXPECT_THAT(r.out, ContainsRegex("link +r4:eth1--r1:eth2 +recreated")) << r.out;
  EXPECT_THAT(r.out, ContainsRegex("container +r1 +unchanged")) << r.out;
  EXPECT_THAT(r.out, ContainsRegex("link +r1:eth1--r2:eth2 +unchanged")) << r.out;
  EXPECT_NE(Meshctl({"exec", "ring-r1", "ping", "-c", "1", "-W", "1", "10.78.34.1"}).code, 0);
  EXPECT_TRUE(reaches("ring-r1", "10.78.23.2"));
  EXPECT_TRUE(reaches("ring-r1", "10.78.41.1"));  // the link itself is back

  r = Meshctl({"down", "ring"});
  EXPECT_EQ(r.code, 0) << Describe({"down", "ring"}, r);
  EXPECT_THAT(AllContainers(), ::testing::IsEmpty());
  EXPECT_THAT(AllNetworks(), ::testing::IsEmpty());
  ExpectTraces(clean_);
}

// The loader's errors: every problem at once, FILE:LINE:COL each; nothing sent.
TEST_F(MeshctlTest, SpecErrorsAreReportedAtTheirPlaceAndNothingIsCreated) {
  const std::string spec = WriteSpec("bad.yaml", R"(name: bad
networks:
  net:
    subnet: 10.89.30.0/24
containers:
  web:
    image: busybox
    comand: sleep 100
    networks: [net]
    ports:
      - "70000:80"
)");
  Result r = Meshctl({"up", "-f", spec});
  EXPECT_EQ(r.code, 1) << Describe({"up", spec}, r);
  EXPECT_THAT(r.err, ContainsRegex(absl::StrCat("(^|\n)", spec, ":8:5: .*comand.*command")))
      << r.err;
  EXPECT_THAT(r.err, ContainsRegex(absl::StrCat("(^|\n)", spec, ":11:9: .*70000"))) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(AllContainers(), ::testing::IsEmpty());
  EXPECT_THAT(AllNetworks(), ::testing::IsEmpty());
  EXPECT_THAT(Json({"group", "ls"}), ::testing::IsEmpty());
  ExpectTraces(clean_);

  // The same from stdin (-f -).
  r = Meshctl({"up", "-f", "-"}, ReadFile(spec).value_or(""));
  EXPECT_EQ(r.code, 1) << Describe({"up", "-f", "-"}, r);
  EXPECT_THAT(r.err, ContainsRegex(":8:5: .*comand")) << r.err;

  // Valid YAML that meshd refuses: its error, which names an API field, shows at the field's
  // place in the file (docs/spec.md's own example: a host port published twice).
  const std::string clash = WriteSpec("clash.yaml", R"(name: clash
networks:
  net:
    subnet: 10.89.31.0/24
containers:
  web:
    image: busybox
    command: sleep 100
    networks: [net]
    ports:
      - "8080:80"
      - "8080:81"
)");
  r = Meshctl({"up", "-f", clash});
  EXPECT_EQ(r.code, 1) << Describe({"up", clash}, r);
  EXPECT_THAT(r.err, ContainsRegex(absl::StrCat(clash, ":12:[0-9]+: .*ports\\[1\\]"))) << r.err;
  EXPECT_THAT(AllContainers(), ::testing::IsEmpty());
  EXPECT_THAT(AllNetworks(), ::testing::IsEmpty());
  ExpectTraces(clean_);
}

// A subnet overlapping a network that exists already: meshd refuses the group, and meshctl
// shows its error at the subnet's line (docs/spec.md: overlaps are meshd's to judge, located
// with SourceMap::Locate).
TEST_F(MeshctlTest, UpLocatesMeshdsSubnetOverlapAtTheSubnetsLine) {
  Result r = Meshctl({"net", "create", "taken", "--subnet", "10.89.0.0/16"});
  ASSERT_EQ(r.code, 0) << Describe({"net", "create"}, r);
  const std::string traces = Traces();
  const std::string spec = WriteSpec("overlap.yaml", R"(name: overlap
networks:
  front:
    subnet: 10.89.10.0/24
containers:
  web:
    image: busybox
    command: sleep 100
    networks: [front]
)");
  r = Meshctl({"up", "-f", spec});
  EXPECT_EQ(r.code, 1) << Describe({"up", spec}, r);
  EXPECT_THAT(r.err, HasSubstr("overlap")) << r.err;
  EXPECT_THAT(r.err, ContainsRegex(absl::StrCat(spec, ":4:[0-9]+: "))) << r.err;
  EXPECT_THAT(AllContainers(), ::testing::IsEmpty());
  EXPECT_THAT(AllNetworks(), ::testing::ElementsAre("taken"));
  ExpectTraces(traces);
}

// Exit codes scripts rely on (docs/cli.md), and the system commands.
TEST_F(MeshctlTest, ExitCodesUsageVersionAndInfo) {
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string in_stderr;
  };
  for (const Case& c : std::vector<Case>{
           {{"nosuch"}, 2, "\"nosuch\" is not a meshctl command"},
           {{"net", "lss"}, 2, "did you mean \"ls\"?"},
           {{"net"}, 2, "a command is needed: ls, create"},
           {{"logs"}, 2, "container"},
           {{"rm", "nosuch"}, 1, "\"nosuch\""},
           {{"stop", "nosuch"}, 1, "nosuch"},
           {{"inspect", "nosuch"}, 1, "nosuch"},
           {{"-o", "xml", "ps"}, 2, "xml"},
           {{"ps", "-o", "xml"}, 2, "xml"},
           {{"net", "create", "Bad_Name"}, 1, "Bad_Name"},
           {{"logs", "--since", "yesterday", "x"}, 2, "yesterday"},
           {{"exec", "only-a-container"}, 2, "exec"},
           {{"up"}, 2, "file"},
       }) {
    Result r = Meshctl(c.args);
    EXPECT_EQ(r.code, c.code) << Describe(c.args, r);
    EXPECT_THAT(r.err, HasSubstr(c.in_stderr)) << Describe(c.args, r);
  }
  // exec: meshctl's own failures are 125, with meshd's reason, at once.
  const absl::Time start = absl::Now();
  Result r = Meshctl({"exec", "nosuch", "true"});
  EXPECT_EQ(r.code, 125) << Describe({"exec", "nosuch", "true"}, r);
  EXPECT_THAT(r.err, HasSubstr("\"nosuch\"")) << Describe({"exec", "nosuch", "true"}, r);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  // Nothing was made by any of them.
  ExpectTraces(clean_);

  // meshd not there: exit 1 and the documented hint.
  const std::vector<std::string> away = {MESHCTL_PATH, "-H", "unix:///run/scratch/none.sock", "ps"};
  r = RunToEnd(away, {kPath}, "", absl::Seconds(30));
  EXPECT_EQ(r.code, 1) << Describe(away, r);
  EXPECT_THAT(r.err, HasSubstr("cannot reach meshd at unix:///run/scratch/none.sock"));
  EXPECT_THAT(r.err, HasSubstr("is meshd running"));

  r = Meshctl({"version"});
  EXPECT_EQ(r.code, 0) << Describe({"version"}, r);
  EXPECT_THAT(r.out,
              ContainsRegex("^meshctl [0-9]+\\.[0-9]+\\.[0-9]+ \\(commit [^,]+, API mesh.v1\\)"))
      << r.out;
  EXPECT_THAT(r.out, ContainsRegex("\nmeshd +[0-9]+\\.[0-9]+\\.[0-9]+ \\(commit .*kernel "))
      << r.out;
  nlohmann::json version = Json({"version"});
  EXPECT_EQ(version["client"]["api_version"], "mesh.v1") << version.dump();
  EXPECT_EQ(version["server"]["api_version"], "mesh.v1") << version.dump();
  EXPECT_EQ(version["client"]["version"], version["server"]["version"]);

  r = Meshctl({"info", "-o", "yaml"});
  EXPECT_EQ(r.code, 0) << Describe({"info", "-o", "yaml"}, r);
  YAML::Node info;
  try {
    info = YAML::Load(r.out);
  } catch (const YAML::Exception& e) {
    FAIL() << "info -o yaml is not YAML: " << e.what() << "\n" << r.out;
  }
  ASSERT_TRUE(info.IsMap()) << r.out;
  EXPECT_EQ(info["state_dir"].as<std::string>(""), Sandbox::kStateDir) << r.out;
  EXPECT_EQ(info["run_dir"].as<std::string>(""), Sandbox::kRunDir) << r.out;
  EXPECT_EQ(info["default_subnet_pool"].as<std::string>(""), "10.88.0.0/16") << r.out;
  EXPECT_EQ(info["containers_running"].as<int>(-1), 0) << r.out;
  EXPECT_EQ(info["version"]["api_version"].as<std::string>(""), "mesh.v1") << r.out;
  const std::string info_table = MustMeshctl({"info"});
  EXPECT_THAT(info_table, HasSubstr("State dir:       /var/lib/mesh"));
  EXPECT_THAT(info_table, HasSubstr("DNS upstreams:   203.0.113.254:53, 2s each"));
  EXPECT_EQ(info["dns"]["upstreams"][0].as<std::string>(""), "203.0.113.254:53") << r.out;

  // completion: a script that knows the commands.
  const std::string bash = MustMeshctl({"completion", "bash"});
  for (const char* word : {"up", "down", "exec", "logs", "events"}) {
    EXPECT_THAT(bash, HasSubstr(word));
  }
  const std::vector<std::string> check = {"bash", "-n", "-c", bash};
  EXPECT_EQ(RunToEnd(check, {kPath}, "", absl::Seconds(10)).code, 0);
}

// net create|ls|inspect|rm, image ls, and events followed while things happen.
TEST_F(MeshctlTest, ImageImportFromStdinAndFileRunAndRemove) {
  absl::StatusOr<std::string> archive =
      MakeBusyboxArchive(absl::StrCat(Sandbox::kScratchDir, "/image"), "mybox:1", "from-mybox");
  ASSERT_TRUE(archive.ok()) << archive.status();
  absl::StatusOr<std::string> bytes = ReadFile(*archive);
  ASSERT_TRUE(bytes.ok()) << bytes.status();

  // `-`: the archive streamed from stdin; a file: streamed too, under another name.
  Result from_stdin = Meshctl({"image", "import", "-"}, *bytes);
  ASSERT_EQ(from_stdin.code, 0) << Describe({"image", "import", "-"}, from_stdin);
  EXPECT_THAT(from_stdin.out, HasSubstr("mybox:1"));
  EXPECT_THAT(MustMeshctl({"image", "import", *archive, "-r", "mybox:2"}), HasSubstr("mybox:2"));
  EXPECT_EQ(MustMeshctl({"run", "--rm", "mybox:2"}), "from-mybox\n");

  std::set<std::string> references;
  for (const nlohmann::json& image : Json({"image", "ls"})) {
    for (const nlohmann::json& ref : image["references"]) references.insert(ref.get<std::string>());
  }
  EXPECT_TRUE(references.contains("mybox:1") && references.contains("mybox:2"))
      << Json({"image", "ls"}).dump();

  // An archive that is not one: refused, nothing added.
  Result junk = Meshctl({"image", "import", "-"}, "not a tar archive");
  EXPECT_EQ(junk.code, 1) << Describe({"image", "import", "-"}, junk);
  EXPECT_FALSE(junk.err.empty());

  // One of its two names goes alone (docker rmi of one tag), also while a container made
  // from that name exists; the container keeps its image when it runs again.
  MustMeshctl({"run", "-d", "--name", "keeper", "mybox:1"});
  EXPECT_EQ(MustMeshctl({"wait", "keeper"}), "0\n");
  EXPECT_EQ(MustMeshctl({"image", "rm", "mybox:1"}),
            "untagged mybox:1 (the image keeps its other names)\n");
  MustMeshctl({"start", "keeper"});
  EXPECT_EQ(MustMeshctl({"wait", "keeper"}), "0\n");
  EXPECT_EQ(MustMeshctl({"logs", "keeper"}), "from-mybox\nfrom-mybox\n");
  MustMeshctl({"rm", "keeper"});
  EXPECT_EQ(MustMeshctl({"run", "--rm", "mybox:2"}), "from-mybox\n");
  EXPECT_EQ(MustMeshctl({"image", "rm", "mybox:2"}), "removed mybox:2 (1 layers deleted)\n");
  EXPECT_THAT(MustMeshctl({"image", "ls"}), Not(HasSubstr("mybox")));
}

TEST_F(MeshctlTest, NetworksImagesAndEvents) {
  Result r = Meshctl({"net", "create", "front", "--subnet", "10.90.1.0/24", "-l", "tier=web"});
  ASSERT_EQ(r.code, 0) << Describe({"net", "create"}, r);
  EXPECT_EQ(r.out, "front 10.90.1.0/24\n");
  // The bridge is there, with the gateway's address.
  absl::StatusOr<std::string> addresses =
      sandbox().Check(Sandbox::Ns::kHost, {"ip", "-o", "-4", "addr", "show"});
  EXPECT_THAT(addresses.value_or(""), HasSubstr("10.90.1.1/24"));
  const std::string ls = MustMeshctl({"net", "ls"});
  EXPECT_THAT(ls, ContainsRegex("front +10\\.90\\.1\\.0/24 +10\\.90\\.1\\.1 +\\S+ +on +0")) << ls;
  nlohmann::json inspected = ParseJson(MustMeshctl({"net", "inspect", "front"}));
  ASSERT_TRUE(inspected.is_array() && inspected.size() == 1) << inspected.dump();
  EXPECT_EQ(inspected[0]["spec"]["gateway"], "10.90.1.1");
  EXPECT_EQ(inspected[0]["spec"]["labels"]["labels"]["tier"], "web") << inspected.dump();
  // A second one with the same name, or an overlapping subnet: refused.
  r = Meshctl({"net", "create", "front"});
  EXPECT_EQ(r.code, 1) << Describe({"net", "create", "front"}, r);
  r = Meshctl({"net", "create", "other", "--subnet", "10.90.0.0/16"});
  EXPECT_EQ(r.code, 1) << Describe({"net", "create", "other"}, r);
  EXPECT_THAT(r.err, HasSubstr("overlap"));

  // image ls: the built-in busybox.
  nlohmann::json images = Json({"image", "ls"});
  bool busybox = false;
  for (const nlohmann::json& image : images) {
    for (const nlohmann::json& ref : image["references"]) {
      if (absl::StartsWith(ref.get<std::string>(), "busybox")) busybox = true;
    }
    EXPECT_TRUE(absl::StartsWith(image.value("id", ""), "sha256:")) << image.dump();
  }
  EXPECT_TRUE(busybox) << images.dump();
  EXPECT_THAT(MustMeshctl({"image", "ls"}), HasSubstr("busybox"));

  // events -o json: one JSON object per line, as things happen.
  const std::string events_out = absl::StrCat(Sandbox::kScratchDir, "/events.out");
  UniqueFd out(open(events_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  ASSERT_TRUE(out.valid());
  absl::StatusOr<ChildProcess> events = ChildProcess::Spawn(
      {.argv = {MESHCTL_PATH, "events", "-o", "json"},
       .env = std::vector<std::string>{kPath, absl::StrCat("MESH_HOST=unix://", kSocket)},
       .stdout_fd = out.get(),
       .stderr_fd = out.get()});
  ASSERT_TRUE(events.ok()) << events.status();
  // Parsed events so far (whole lines: one may be half written); each must be a JSON object.
  auto seen = [&] {
    std::string text = ReadFile(events_out).value_or("");
    text.resize(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
    std::vector<nlohmann::json> parsed;
    for (const std::string& line : Lines(text)) {
      nlohmann::json event = ParseJson(line);
      EXPECT_TRUE(event.is_object()) << "not a JSON object: " << line;
      if (event.is_object()) parsed.push_back(event);
    }
    return parsed;
  };
  auto has = [&](const std::string& kind, const std::string& object) {
    for (const nlohmann::json& e : seen()) {
      if (e.value("kind", "") == kind && e.value("object", "") == object) return true;
    }
    return false;
  };
  // Following starts once the call is up: until then, networks made come and go unseen.
  bool following = false;
  for (int i = 0; i < 20 && !following; ++i) {
    const std::string probe = absl::StrCat("probe", i);
    EXPECT_EQ(Meshctl({"net", "create", probe}).code, 0);
    following = WaitFor([&] { return has("KIND_NETWORK_CREATED", probe); }, absl::Milliseconds(500),
                        "probe event")
                    .ok();
    EXPECT_EQ(Meshctl({"net", "rm", probe}).code, 0);
  }
  ASSERT_TRUE(following) << "meshctl events printed nothing: " << ReadFile(events_out).value_or("");
  {
    v1::CreateContainerRequest request;
    request.mutable_spec()->set_name("ev");
    request.mutable_spec()->set_image("busybox");
    request.mutable_spec()->add_args("sleep");
    request.mutable_spec()->add_args("1000");
    request.mutable_spec()->add_networks()->set_network("front");
    request.set_start(true);
    v1::Container created;
    grpc::Status status = meshd().containers().Create(Ctx().get(), request, &created);
    ASSERT_TRUE(status.ok()) << StatusText(status);
  }
  // stop, then rm: it ended (with SIGTERM's exit), then went.
  r = Meshctl({"stop", "-t", "1", "ev"});
  EXPECT_EQ(r.code, 0) << Describe({"stop", "-t", "1", "ev"}, r);
  EXPECT_EQ(r.out, "ev\n");
  r = Meshctl({"rm", "ev"});
  EXPECT_EQ(r.code, 0) << Describe({"rm", "ev"}, r);
  EXPECT_EQ(r.out, "ev\n");
  for (const char* kind : {"KIND_CONTAINER_CREATED", "KIND_CONTAINER_STARTED",
                           "KIND_CONTAINER_DIED", "KIND_CONTAINER_REMOVED"}) {
    EXPECT_TRUE(WaitFor([&] { return has(kind, "ev"); }, absl::Seconds(5), kind).ok())
        << kind << " not seen:\n"
        << ReadFile(events_out).value_or("");
  }
  // In order, each once.
  std::vector<std::string> kinds;
  for (const nlohmann::json& e : seen()) {
    if (e.value("object", "") == "ev") kinds.push_back(e.value("kind", ""));
  }
  EXPECT_THAT(kinds, ::testing::ElementsAre("KIND_CONTAINER_CREATED", "KIND_CONTAINER_STARTED",
                                            "KIND_CONTAINER_DIED", "KIND_CONTAINER_REMOVED"));
  // Ctrl-C (SIGINT), then SIGTERM: meshctl ends at once, by the signal or with a clean exit.
  for (int sig : {SIGINT, SIGTERM}) {
    if (sig == SIGTERM) {
      events = ChildProcess::Spawn(
          {.argv = {MESHCTL_PATH, "events"},
           .env = std::vector<std::string>{kPath, absl::StrCat("MESH_HOST=unix://", kSocket)},
           .stdout_fd = out.get(),
           .stderr_fd = out.get()});
      ASSERT_TRUE(events.ok()) << events.status();
      absl::SleepFor(absl::Milliseconds(300));
      ASSERT_TRUE(events->running()) << "meshctl events ended by itself";
    }
    ASSERT_TRUE(events->Signal(sig).ok());
    absl::StatusOr<ExitStatus> ended = events->Wait(absl::Seconds(5));
    ASSERT_TRUE(ended.ok()) << "meshctl events still runs after signal " << sig;
    EXPECT_TRUE(ended->ok() || ended->code == 128 + sig ||
                (ended->signal == sig && ended->code == 0))
        << "meshctl events after signal " << sig << ": " << ended->ToString() << "\n"
        << ReadFile(events_out).value_or("");
  }

  // rm: the network goes, twice is an error.
  r = Meshctl({"net", "rm", "front"});
  EXPECT_EQ(r.code, 0) << Describe({"net", "rm", "front"}, r);
  EXPECT_EQ(r.out, "front\n");
  r = Meshctl({"net", "rm", "front"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("front"));
  EXPECT_THAT(AllNetworks(), ::testing::IsEmpty());
  ExpectTraces(clean_);
}

// meshctl run: one container, like docker run.
TEST_F(MeshctlTest, RunForegroundDetachedPublishedEnvVolumeAndRm) {
  {
    Result help = Meshctl({"run", "--help"});
    if (help.code != 0) GTEST_SKIP() << "this meshctl has no run command yet:\n" << help.err;
  }
  ASSERT_EQ(Meshctl({"net", "create", "front", "--subnet", "10.90.2.0/24"}).code, 0);

  // Foreground: the container's output on ours, its exit code ours; --rm: gone afterwards.
  std::vector<std::string> args = {
      "run",       "--rm",    "--name", "once", "-e",
      "WHO=world", "busybox", "sh",     "-c",   "echo hello $WHO; echo oops >&2; exit 3"};
  Result r = Meshctl(args);
  EXPECT_EQ(r.code, 3) << Describe(args, r);
  EXPECT_THAT(r.out, HasSubstr("hello world\n")) << Describe(args, r);
  EXPECT_THAT(r.err, HasSubstr("oops\n")) << Describe(args, r);
  EXPECT_THAT(AllContainers(), Not(::testing::Contains("once")));

  // Without --rm it stays, stopped, with its exit code.
  args = {"run", "--name", "kept", "busybox", "sh", "-c", "exit 0"};
  r = Meshctl(args);
  EXPECT_EQ(r.code, 0) << Describe(args, r);
  std::map<std::string, nlohmann::json> containers = ContainersByName();
  ASSERT_TRUE(containers.contains("kept")) << Describe(args, r);
  EXPECT_EQ(containers["kept"].value("state", ""), "CONTAINER_STATE_STOPPED");
  EXPECT_EQ(Meshctl({"rm", "kept"}).code, 0);

  // A bind mount, read-only.
  const std::string dir = absl::StrCat(Sandbox::kScratchDir, "/vol");
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(WriteFileAtomically(dir + "/f", "from the host\n", 0644).ok());
  args = {"run", "--rm", "-v", dir + ":/data:ro", "busybox", "cat", "/data/f"};
  r = Meshctl(args);
  EXPECT_EQ(r.code, 0) << Describe(args, r);
  EXPECT_EQ(r.out, "from the host\n") << Describe(args, r);
  args = {"run", "--rm", "-v", dir + ":/data:ro", "busybox", "touch", "/data/new"};
  r = Meshctl(args);
  EXPECT_NE(r.code, 0) << Describe(args, r);
  EXPECT_FALSE(std::filesystem::exists(dir + "/new"));
  args = {"run", "--rm", "-v", dir + ":/data", "busybox", "touch", "/data/new"};
  r = Meshctl(args);
  EXPECT_EQ(r.code, 0) << Describe(args, r);
  EXPECT_TRUE(std::filesystem::exists(dir + "/new"));

  // Detached, on a network, with a published port: answers from the outside.
  args = {"run",       "-d",
          "--name",    "srv",
          "--network", "front",
          "-p",        "8081:80",
          "-e",        "PAGE=served",
          "busybox",   "sh",
          "-c",        "echo $PAGE > /index.html && exec httpd -f -p 80 -h /"};
  r = Meshctl(args);
  ASSERT_EQ(r.code, 0) << Describe(args, r);
  containers = ContainersByName();
  ASSERT_TRUE(containers.contains("srv"));
  EXPECT_EQ(containers["srv"].value("state", ""), "CONTAINER_STATE_RUNNING");
  ASSERT_EQ(containers["srv"]["addresses"].size(), 1u);
  EXPECT_TRUE(absl::StartsWith(containers["srv"]["addresses"][0].value("ip", ""), "10.90.2."));
  ASSERT_TRUE(sandbox().WaitForPort(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8081).ok());
  EXPECT_EQ(sandbox().HttpGet(Sandbox::Ns::kWan, Sandbox::kHostAddress, 8081).value_or("?"),
            "served\n");
  EXPECT_THAT(LineWith(MustMeshctl({"ps"}), "srv"), HasSubstr("0.0.0.0:8081->80/tcp"));
  // A second one on the same host port: refused, nothing left of it.
  args = {"run", "-d",      "--name",  "srv2",  "--network", "front",
          "-p",  "8081:80", "busybox", "sleep", "100"};
  r = Meshctl(args);
  EXPECT_EQ(r.code, 125) << Describe(args, r);  // run's own failure, as docker run's
  EXPECT_THAT(r.err, HasSubstr("8081")) << Describe(args, r);
  EXPECT_THAT(AllContainers(), ::testing::ElementsAre("srv"));
  // Bad flags: usage errors, nothing sent.
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"run", "-p", "notaport", "busybox", "true"},
        std::vector<std::string>{"run"}}) {
    r = Meshctl(bad);
    EXPECT_EQ(r.code, 2) << Describe(bad, r);
  }
  EXPECT_EQ(Meshctl({"rm", "-f", "srv"}).code, 0);
  EXPECT_EQ(Meshctl({"net", "rm", "front"}).code, 0);
  EXPECT_THAT(AllContainers(), ::testing::IsEmpty());
  ExpectTraces(clean_);
}

// The README's main command, deploy/demo.sh, as written: its own sandbox host and wan
// (namespaces it makes inside this test's sandbox), meshd, web.yaml up, what mesh does, down.
TEST(DemoTest, ReadmeMainCommandRunsAsWrittenAndLeavesNothing) {
  MESH_REQUIRE_ROOT();
  ASSERT_TRUE(InSandbox());
  const std::string dir = absl::StrCat(Sandbox::kScratchDir, "/demo");
  const std::vector<std::string> argv = {"bash", absl::StrCat(MESH_SOURCE_DIR, "/deploy/demo.sh")};
  Result r =
      RunToEnd(argv,
               {kPath, absl::StrCat("MESHD=", MESHD_PATH), absl::StrCat("MESHCTL=", MESHCTL_PATH),
                absl::StrCat("MESH_SHIM=", MESH_SHIM_PATH), "MESH_DEMO_DIR=" + dir},
               "", absl::Seconds(150));
  const std::string all =
      Describe(argv, r) + "\n--- meshd.log\n" + ReadFile(dir + "/meshd.log").value_or("(none)");
  EXPECT_EQ(r.code, 0) << all;
  // Each step's output, by its heading.
  auto section = [&](const std::string& heading) -> std::string {
    const size_t start = r.out.find(heading);
    if (start == std::string::npos) return "";
    const size_t end = r.out.find("\033[1m== ", start);
    return r.out.substr(start, end == std::string::npos ? std::string::npos : end - start);
  };
  EXPECT_THAT(section("meshd in the sandbox host"), ContainsRegex("meshd +[0-9.]+ \\(commit"))
      << all;
  const std::string up = section("Bring up the group");
  EXPECT_THAT(up, ContainsRegex("container +server +created")) << all;
  EXPECT_THAT(up, ContainsRegex("container +client +created")) << all;
  EXPECT_THAT(up, HasSubstr("group web is up")) << all;
  EXPECT_THAT(up, ContainsRegex("web-server +busybox +running .*10\\.89\\.10\\.10.*"
                                "0\\.0\\.0\\.0:8080->80/tcp"))
      << all;
  EXPECT_THAT(up, ContainsRegex("web-client +busybox +running")) << all;
  const std::string by_name = section("Containers reach each other by name");
  EXPECT_THAT(by_name, HasSubstr("\nnameserver 10.89.10.1\nsearch web")) << all;
  EXPECT_THAT(by_name, HasSubstr("\nhello from mesh (server)\n")) << all;
  EXPECT_THAT(by_name, HasSubstr("Name:\twww.web\nAddress: 10.89.10.10\n")) << all;
  EXPECT_THAT(section("Containers reach the outside world through NAT"),
              HasSubstr("\nhello from the outside world\n"))
      << all;
  EXPECT_THAT(section("The published port answers from the outside"),
              HasSubstr("\nhello from mesh (server)\n"))
      << all;
  const std::string down = section("Tear it down");
  EXPECT_THAT(down, HasSubstr("removed container server")) << all;
  EXPECT_THAT(down, ContainsRegex("\\$ \\S+ ps -a\nNAME +IMAGE +STATE +STATUS +ADDRESSES +PORTS "
                                  "+GROUP *\n\ndemo: done"))
      << all;
  EXPECT_TRUE(absl::EndsWith(r.out, "demo: done\n")) << all;

  // Nothing of it is left: namespaces, cgroups, processes, mounts.
  Result netns = RunToEnd({"ip", "netns", "list"}, {kPath}, "", absl::Seconds(10));
  EXPECT_THAT(netns.out, Not(HasSubstr("mesh-demo"))) << netns.out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
    EXPECT_FALSE(entry.path().filename() == "mesh-demo") << entry.path();
    EXPECT_FALSE(std::filesystem::exists(entry.path() / "mesh-demo")) << entry.path();
  }
  EXPECT_TRUE(WaitFor([] { return OtherProcesses().empty(); }, absl::Seconds(5),
                      "the demo's processes to end")
                  .ok())
      << absl::StrJoin(OtherProcesses(), "\n");
  EXPECT_THAT(ReadFile("/proc/self/mounts").value_or(""), Not(HasSubstr(dir + "/")));
}

}  // namespace
}  // namespace mesh::testing
