// Container start latency through the runtime and mesh-shim, in the test sandbox (root).
//
//   build/release/bench/runtime_bench
//
// Phases, 100 containers each, with the CPUs left to go idle in between (the kernel tears
// namespaces down in the background and would otherwise bill one phase for the last):
//   create+start: Create (shim, namespaces, cgroup, rootfs) + Start, until the command runs;
//   run /bin/true: Create + Start + Wait for its exit (and, in a second column, + Delete);
// and the resident memory of one shim. Prints p50/p90/p99 in ms.
//
// With crun installed (/usr/bin/crun), the same busybox layer as an OCI bundle through
// `crun run` in the same run, twice: with cgroups (crun's cgroupfs driver, v1 hierarchies) and
// with --cgroup-manager=disabled; then the ratios mesh/crun. crun 1.8 refuses this machine's
// hybrid layout whatever its flags ("cgroups in hybrid mode not supported, drop all controllers
// from cgroupv2", with --cgroup-manager=disabled and without any cgroup in config.json too), so
// it runs in a mount namespace of its own where an empty tmpfs covers /sys/fs/cgroup/unified:
// there it sees a cgroup v1 host. The bundle matches mesh's defaults: the same namespaces
// (pid, mount, uts, ipc, cgroup, network), Docker's 14 capabilities, no_new_privs, mesh's own
// default seccomp policy written as OCI JSON (libseccomp compiles it at every run, as mesh
// does), mesh's masked and read-only paths, the standard mounts. One difference stays: crun's
// root is the layer itself, read-only (crun binds it), where mesh mounts an overlay with a
// per-container upper dir. `crun run` removes the container when it exits, so the fair mesh
// figure for it is the "+ delete" column.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/atomic_file.h"
#include "base/child_process.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"
#include "bench/bench_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/container/cgroup_access.h"
#include "runtime/container/runtime.h"
#include "runtime/security/capabilities.h"
#include "runtime/security/seccomp.h"
#include "runtime/security/syscalls.h"
#include "runtime/spec/defaults.h"
#include "tests/support/busybox_layer.h"
#include "tests/support/sandbox.h"

namespace mesh::runtime {
namespace {

using ::mesh::bench::Ms;
using ::mesh::bench::Percentiles;
using ::mesh::bench::Summarize;
using ::mesh::bench::WaitForIdleCpus;

constexpr int kContainers = 100;
constexpr char kCrun[] = "/usr/bin/crun";
constexpr char kCgroupParent[] = "mesh-test-bench";
// crun's containers' cgroups: <hierarchy>/mesh-bench-crun/run (one at a time).
constexpr char kCrunCgroupParent[] = "mesh-bench-crun";
constexpr char kCgroupRoot[] = "/sys/fs/cgroup";

uint64_t RssKib(pid_t pid) {
  auto status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status.ok()) return 0;
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (absl::StartsWith(line, "VmRSS:")) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      uint64_t kib = 0;
      if (f.size() >= 2 && absl::SimpleAtoi(f[1], &kib)) return kib;
    }
  }
  return 0;
}

// mesh's default seccomp policy for Docker's capabilities as OCI "linux.seccomp".
nlohmann::json SeccompAsOci() {
  absl::StatusOr<security::CapMask> caps = security::CapabilityMask(DefaultCapabilities());
  const security::SeccompPolicy policy = security::DefaultSeccompPolicy(caps.ok() ? *caps : 0);
  nlohmann::json syscalls = nlohmann::json::array();
  for (const security::SeccompRule& rule : policy.rules) {
    nlohmann::json r = {{"names", {security::SyscallName(rule.syscall)}}};
    if (rule.action == security::SeccompAction::kAllow) {
      r["action"] = "SCMP_ACT_ALLOW";
    } else {
      r["action"] = "SCMP_ACT_ERRNO";
      r["errnoRet"] = ENOSYS;
    }
    if (!rule.all_of.empty()) {
      nlohmann::json args = nlohmann::json::array();
      for (const security::SeccompArgMatch& m : rule.all_of) {
        args.push_back({{"index", m.index},
                        {"value", m.mask},
                        {"valueTwo", m.value},
                        {"op", "SCMP_CMP_MASKED_EQ"}});
      }
      r["args"] = std::move(args);
    }
    syscalls.push_back(std::move(r));
  }
  return {{"defaultAction", "SCMP_ACT_ERRNO"},
          {"defaultErrnoRet", EPERM},
          {"architectures", {"SCMP_ARCH_X86_64"}},
          {"syscalls", std::move(syscalls)}};
}

// config.json for `crun run`: `args` on `rootfs` (read-only), mesh's defaults as above.
nlohmann::json CrunConfig(const std::string& rootfs, const std::vector<std::string>& args) {
  const std::vector<std::string>& caps = DefaultCapabilities();
  std::vector<std::string> masked;
  for (const std::string& p : DefaultMaskedPaths()) {
    if (!absl::StrContains(p, '*')) masked.push_back(p);  // crun does not expand globs
  }
  auto mount = [](const char* dest, const char* type, std::vector<std::string> options) {
    return nlohmann::json{
        {"destination", dest}, {"type", type}, {"source", type}, {"options", options}};
  };
  nlohmann::json namespaces = nlohmann::json::array();
  for (const char* ns : {"pid", "mount", "uts", "ipc", "cgroup", "network"}) {
    namespaces.push_back({{"type", ns}});
  }
  return {{"ociVersion", "1.0.2"},
          {"process",
           {{"terminal", false},
            {"user", {{"uid", 0}, {"gid", 0}}},
            {"args", args},
            {"env", {"PATH=/bin"}},
            {"cwd", "/"},
            {"capabilities",
             {{"bounding", caps}, {"effective", caps}, {"permitted", caps}, {"inheritable", {}}}},
            {"noNewPrivileges", true}}},
          {"root", {{"path", rootfs}, {"readonly", true}}},
          {"hostname", "crun-bench"},
          {"mounts",
           {mount("/proc", "proc", {"nosuid", "noexec", "nodev"}),
            mount("/dev", "tmpfs", {"nosuid", "noexec", "mode=755", "size=64k"}),
            mount("/dev/pts", "devpts",
                  {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
            mount("/dev/shm", "tmpfs", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
            mount("/dev/mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
            mount("/sys", "sysfs", {"nosuid", "noexec", "nodev", "ro"})}},
          {"linux",
           {{"namespaces", namespaces},
            {"cgroupsPath", absl::StrCat("/", kCrunCgroupParent, "/run")},
            {"maskedPaths", masked},
            {"readonlyPaths", DefaultReadonlyPaths()},
            {"seccomp", SeccompAsOci()}}}};
}

// The v1 hierarchies (and the cgroup2 mount) that hold crun's cgroup parent; removes it from
// each (crun removes each container's own cgroup when `crun run` ends, not the parent).
int RemoveCrunCgroupParent() {
  int found = 0;
  std::error_code ec;
  for (const auto& h : std::filesystem::directory_iterator(kCgroupRoot, ec)) {
    const std::string dir = absl::StrCat(h.path().string(), "/", kCrunCgroupParent);
    if (access(dir.c_str(), F_OK) != 0) continue;
    ++found;
    rmdir(absl::StrCat(dir, "/run").c_str());  // only left if a run was killed
    if (rmdir(dir.c_str()) != 0) std::printf("crun: cannot remove cgroup %s\n", dir.c_str());
  }
  return found;
}

// Everything the crun comparison makes, removed on every way out.
struct CrunScratch {
  std::string bundle;
  std::string root;  // crun --root
  ChildProcess holder;
  ~CrunScratch() {
    std::error_code ec;
    std::filesystem::remove_all(bundle, ec);
    std::filesystem::remove_all(root, ec);
    RemoveCrunCgroupParent();
    // The holder's mount namespace (and its tmpfs) goes with the last fd: the holder, killed
    // and reaped by its ChildProcess, and the bench's own fd, closed before this runs.
  }
};

// A mount namespace for crun: a private copy of ours with an empty tmpfs over
// /sys/fs/cgroup/unified. The returned fd keeps it alive; `holder` is its first process.
absl::StatusOr<UniqueFd> CrunMountNamespace(ChildProcess* holder) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return mesh::ErrnoToStatus(errno, "pipe2");
  UniqueFd r(p[0]), w(p[1]);
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(
      {.argv = {"unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                "mount -t tmpfs -o size=64k,mode=755 mesh-bench-crun /sys/fs/cgroup/unified && "
                "echo ready && exec sleep 100000"},
       .stdout_fd = w.get()});
  if (!child.ok()) return child.status();
  *holder = *std::move(child);
  w.Reset();
  std::string out;
  char buf[64];
  ssize_t n;
  while (!absl::StrContains(out, "ready") && (n = read(r.get(), buf, sizeof(buf))) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  if (!absl::StrContains(out, "ready")) {
    return absl::InternalError("crun's mount namespace: the holder did not get ready");
  }
  UniqueFd ns(open(absl::StrCat("/proc/", holder->pid(), "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) return mesh::ErrnoToStatus(errno, "open the holder's mount namespace");
  return ns;
}

struct CrunRun {
  std::vector<double> ms;
  std::string error;  // the first failure, with crun's stderr
};

CrunRun RunCrun(const CrunScratch& scratch, int mntns, bool cgroups, const std::string& prefix) {
  CrunRun result;
  const std::string err_path = absl::StrCat(scratch.root, "/stderr");
  for (int i = 0; i < kContainers; ++i) {
    UniqueFd err(open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    std::vector<std::string> argv = {kCrun, "--root", scratch.root};
    if (!cgroups) argv.push_back("--cgroup-manager=disabled");
    for (const char* a : {"run", "--bundle"}) argv.push_back(a);
    argv.push_back(scratch.bundle);
    argv.push_back(absl::StrCat(prefix, i));
    auto t0 = std::chrono::steady_clock::now();
    absl::StatusOr<ChildProcess> crun =
        ChildProcess::Spawn({.argv = std::move(argv), .mntns_fd = mntns, .stderr_fd = err.get()});
    absl::StatusOr<ExitStatus> exit =
        crun.ok() ? crun->Wait(absl::Seconds(30)) : absl::StatusOr<ExitStatus>(crun.status());
    result.ms.push_back(Ms(std::chrono::steady_clock::now() - t0));
    if (!exit.ok() || !exit->ok()) {
      result.error = absl::StrCat("crun run #", i, ": ",
                                  exit.ok() ? exit->ToString() : exit.status().ToString(), ": ",
                                  absl::StripAsciiWhitespace(ReadFile(err_path).value_or("")));
      return result;
    }
  }
  return result;
}

// The bench's cgroup parent, removed on every way out (each container's cgroup goes with its
// Delete).
struct MeshCgroupParent {
  ~MeshCgroupParent() {
    if (auto driver = HostCgroupDriver(kCgroupParent); driver.ok()) {
      (*driver)->RemoveParent().IgnoreError();  // still in use only if a container leaked
    }
  }
};

TEST(RuntimeBench, StartLatencyAndShimMemory) {
  MESH_REQUIRE_ROOT();
  const std::string layer = absl::StrCat(::mesh::testing::Sandbox::kStateDir, "/bench-layer");
  ASSERT_TRUE(::mesh::testing::MakeBusyboxLayer(layer).ok());
  MeshCgroupParent remove_cgroup_parent;
  RuntimeOptions options;
  options.shim_path = MESH_SHIM_PATH;
  options.cgroup_parent = kCgroupParent;
  options.layers = [&](const std::string&) -> absl::StatusOr<std::vector<std::string>> {
    return std::vector<std::string>{layer};
  };
  Runtime runtime(options);
  auto spec = [](const std::string& id, std::vector<std::string> args) {
    ContainerSpec s;
    s.id = id;
    s.image = "busybox";
    s.process.args = std::move(args);
    s.process.env = {"PATH=/bin"};
    return s;
  };

  WaitForIdleCpus();
  std::vector<double> start;
  uint64_t rss = 0;
  for (int i = 0; i < kContainers; ++i) {
    const std::string id = absl::StrCat("s", i);
    auto t0 = std::chrono::steady_clock::now();
    auto created = runtime.Create(spec(id, {"sleep", "1000"}));
    ASSERT_TRUE(created.ok()) << created.status();
    ASSERT_TRUE(runtime.Start(id).ok());
    start.push_back(Ms(std::chrono::steady_clock::now() - t0));
    if (i == 0) rss = RssKib(created->shim.pid);
  }
  for (int i = 0; i < kContainers; ++i) {
    ASSERT_TRUE(runtime.Delete(absl::StrCat("s", i), /*force=*/true).ok());
  }

  WaitForIdleCpus();
  std::vector<double> run, run_delete;
  for (int i = 0; i < kContainers; ++i) {
    const std::string id = absl::StrCat("t", i);
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(runtime.Create(spec(id, {"/bin/true"})).ok());
    ASSERT_TRUE(runtime.Start(id).ok());
    auto done = runtime.Wait(id);
    run.push_back(Ms(std::chrono::steady_clock::now() - t0));
    ASSERT_TRUE(done.ok() && done->exit_code == 0);
    ASSERT_TRUE(runtime.Delete(id).ok());
    run_delete.push_back(Ms(std::chrono::steady_clock::now() - t0));
  }

  const Percentiles s = Summarize(start), r = Summarize(run), rd = Summarize(run_delete);
  std::printf("\nruntime latency (ms), %d containers per phase\n", kContainers);
  std::printf("%-44s %8s %8s %8s\n", "phase", "p50", "p90", "p99");
  std::printf("%-44s %8.2f %8.2f %8.2f\n", "mesh create+start", s.p50, s.p90, s.p99);
  std::printf("%-44s %8.2f %8.2f %8.2f\n", "mesh run /bin/true", r.p50, r.p90, r.p99);
  std::printf("%-44s %8.2f %8.2f %8.2f\n", "mesh run /bin/true + delete", rd.p50, rd.p90, rd.p99);
  std::printf("shim resident memory: %llu KiB\n", static_cast<unsigned long long>(rss));

  if (access(kCrun, X_OK) != 0) {
    std::printf("crun: not installed, no comparison\n");
    return;
  }
  CrunScratch scratch;
  scratch.bundle = absl::StrCat(::mesh::testing::Sandbox::kStateDir, "/crun-bundle");
  scratch.root = absl::StrCat(::mesh::testing::Sandbox::kStateDir, "/crun-state");
  std::filesystem::create_directories(scratch.bundle);
  std::filesystem::create_directories(scratch.root);
  absl::StatusOr<UniqueFd> mntns = CrunMountNamespace(&scratch.holder);
  ASSERT_TRUE(mntns.ok()) << mntns.status();
  // Once, what crun's container gets: the same capability mask, no_new_privs and seccomp
  // as mesh's (runtime_container_test reads the same lines inside mesh's).
  const std::string config = absl::StrCat(scratch.bundle, "/config.json");
  ASSERT_TRUE(WriteFileAtomically(config,
                                  CrunConfig(layer, {"/bin/sh", "-c",
                                                     "grep -E '^(CapEff|NoNewPrivs|Seccomp):' "
                                                     "/proc/self/status | tr '\\n\\t' '  '"})
                                      .dump(1),
                                  0644)
                  .ok());
  absl::StatusOr<CommandResult> check = RunCommand(
      {.argv = {kCrun, "--root", scratch.root, "run", "--bundle", scratch.bundle, "check"},
       .mntns_fd = mntns->get()});
  ASSERT_TRUE(check.ok()) << check.status();
  ASSERT_TRUE(check->status.ok()) << check->status.ToString() << ": " << check->err;
  EXPECT_THAT(check->out, ::testing::HasSubstr("CapEff: 00000000a80425fb"));
  EXPECT_THAT(check->out, ::testing::HasSubstr("NoNewPrivs: 1"));
  EXPECT_THAT(check->out, ::testing::HasSubstr("Seccomp: 2"));
  RemoveCrunCgroupParent();
  ASSERT_TRUE(WriteFileAtomically(config, CrunConfig(layer, {"/bin/true"}).dump(1), 0644).ok());
  const std::string version = [] {
    absl::StatusOr<CommandResult> v = RunCommand({.argv = {kCrun, "--version"}});
    if (!v.ok()) return std::string("crun");
    std::vector<std::string> lines = absl::StrSplit(v->out, '\n');
    return lines.empty() ? std::string("crun") : lines[0];
  }();

  WaitForIdleCpus();
  CrunRun with_cgroups = RunCrun(scratch, mntns->get(), /*cgroups=*/true, "cg");
  ASSERT_EQ(with_cgroups.error, "");
  // crun leaves its cgroup parent behind in every hierarchy it used: proof that it used them.
  const int hierarchies = RemoveCrunCgroupParent();

  WaitForIdleCpus();
  CrunRun without_cgroups = RunCrun(scratch, mntns->get(), /*cgroups=*/false, "nocg");
  ASSERT_EQ(without_cgroups.error, "");
  EXPECT_EQ(RemoveCrunCgroupParent(), 0);

  const Percentiles c = Summarize(with_cgroups.ms), n = Summarize(without_cgroups.ms);
  std::printf(
      "\n%s, `crun run` of /bin/true on the same busybox layer (read-only root, no\n"
      "overlay); mesh's namespaces, capabilities, no_new_privs, seccomp policy, masked and\n"
      "read-only paths; in a mount namespace where a tmpfs hides the cgroup2 mount\n",
      version.c_str());
  std::printf("inside crun's container: %s\n",
              std::string(absl::StripAsciiWhitespace(check->out)).c_str());
  std::printf("%-44s %8s %8s %8s\n", "phase", "p50", "p90", "p99");
  std::printf("%-44s %8.2f %8.2f %8.2f\n",
              absl::StrCat("crun run, cgroups (v1, ", hierarchies, " hierarchies)").c_str(), c.p50,
              c.p90, c.p99);
  std::printf("%-44s %8.2f %8.2f %8.2f\n", "crun run, --cgroup-manager=disabled", n.p50, n.p90,
              n.p99);
  std::printf(
      "ratio mesh/crun, run /bin/true (mesh + delete vs crun run), p50: %.2f with cgroups, "
      "%.2f vs crun without cgroups\n",
      rd.p50 / c.p50, rd.p50 / n.p50);
  std::printf(
      "ratio mesh/crun, run /bin/true (mesh without delete), p50: %.2f with cgroups, "
      "%.2f vs crun without cgroups\n",
      r.p50 / c.p50, r.p50 / n.p50);
}

}  // namespace
}  // namespace mesh::runtime
