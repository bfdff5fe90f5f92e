// The cgroup drivers against the real kernel, as root, in the sandbox. The driver is the one the
// host calls for: v1 on this project's CI machines (hybrid: v1 controllers, an empty cgroup2),
// v2 on a pure v2 host. The v2 driver's file mapping is covered by the unit tests against the
// fake cgroupfs (docs/cgroups.md).
//
// Cgroups are not namespaced, so every test works under its own parent "mesh-test-cg-<random>"
// (the sandbox launcher sweeps stale "mesh-test-*" cgroups), removes its cgroups with RAII
// guards and the fixture removes the parent, also when a test fails half way.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/atomic_file.h"
#include "base/child_process.h"
#include "base/unique_fd.h"
#include "base/wait.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/cgroups/cgroup.h"
#include "tests/support/sandbox.h"
#include "tests/support/scoped_temp_dir.h"

namespace mesh::runtime {
namespace {

using ::testing::Contains;
using ::testing::IsEmpty;

constexpr int64_t kMiB = 1 << 20;

// Destroys the cgroup when the test ends, however it ends: kills what runs in it and removes
// its directories in every hierarchy.
class ScopedCgroup {
 public:
  explicit ScopedCgroup(std::unique_ptr<Cgroup> cgroup) : cgroup_(std::move(cgroup)) {}
  ~ScopedCgroup() {
    if (cgroup_ == nullptr) return;
    absl::Status s = cgroup_->Destroy();
    EXPECT_TRUE(s.ok()) << s;
  }
  ScopedCgroup(const ScopedCgroup&) = delete;
  ScopedCgroup& operator=(const ScopedCgroup&) = delete;
  Cgroup* operator->() const { return cgroup_.get(); }
  Cgroup& operator*() const { return *cgroup_; }

 private:
  std::unique_ptr<Cgroup> cgroup_;
};

// A busybox shell script held at a gate: it starts only after Go(), so that the test can move
// it into a cgroup first. Its stdout is readable with ReadLine. Killed and reaped when it goes.
struct GatedScript {
  ChildProcess process;
  UniqueFd gate;    // write end of the script's stdin
  UniqueFd output;  // read end of its stdout

  absl::Status Go() {
    if (::write(gate.get(), "go\n", 3) != 3) return absl::InternalError("write to the gate");
    return absl::OkStatus();
  }
  // Reads until a whole line arrives or `timeout` passes.
  absl::StatusOr<std::string> ReadLine(absl::Duration timeout) {
    std::string line;
    absl::Time deadline = absl::Now() + timeout;
    char c;
    while (absl::Now() < deadline) {
      pollfd pfd{output.get(), POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;
      if (::read(output.get(), &c, 1) != 1) return absl::InternalError("script output ended");
      if (c == '\n') return line;
      line += c;
    }
    return absl::DeadlineExceededError("no line from the script");
  }
};

absl::StatusOr<GatedScript> StartGated(const std::string& script) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
    return absl::InternalError("pipe2");
  }
  GatedScript gated;
  UniqueFd in_read(in[0]), out_write(out[1]);
  gated.gate.Reset(in[1]);
  gated.output.Reset(out[0]);
  SpawnOptions options;
  options.argv = {"busybox", "sh", "-c", absl::StrCat("read -r _; ", script)};
  options.stdin_fd = in_read.get();
  options.stdout_fd = out_write.get();
  absl::StatusOr<ChildProcess> process = ChildProcess::Spawn(options);
  if (!process.ok()) return process.status();
  gated.process = std::move(*process);
  return gated;
}

// A fork bomb forked from the test itself (a shell cannot be one: busybox sh exits at its first
// failed fork, so its bomb dies out by itself). Every process forks forever, backing off 1 ms
// after a refused fork. Held at a gate like GatedScript. The first process is killed and
// reaped when this goes; the others belong to the cgroup's KillAll/Destroy.
class ForkBomb {
 public:
  static absl::StatusOr<std::unique_ptr<ForkBomb>> Start() {
    int gate[2];
    if (::pipe2(gate, O_CLOEXEC) != 0) return absl::InternalError("pipe2");
    UniqueFd read_end(gate[0]), write_end(gate[1]);
    pid_t pid = ::fork();
    if (pid < 0) return absl::InternalError("fork");
    if (pid == 0) {
      // The child: async-signal-safe calls only.
      write_end.Reset();
      char c;
      if (::read(read_end.get(), &c, 1) != 1) ::_exit(0);
      for (;;) {
        if (::fork() < 0) {
          const timespec backoff{0, 1000000};
          ::nanosleep(&backoff, nullptr);
        }
      }
    }
    auto bomb = std::unique_ptr<ForkBomb>(new ForkBomb(pid, std::move(write_end)));
    return bomb;
  }
  ~ForkBomb() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);  // Our own child, not yet reaped: the PID is still ours.
      int status;
      ::waitpid(pid_, &status, 0);
    }
  }
  pid_t pid() const { return pid_; }
  absl::Status Go() {
    if (::write(gate_.get(), "x", 1) != 1) return absl::InternalError("write to the gate");
    return absl::OkStatus();
  }
  // The first process's wait status once it ended, within `timeout`.
  absl::StatusOr<int> Wait(absl::Duration timeout) {
    int status = 0;
    absl::Status s = WaitFor([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout,
                             "the fork bomb's first process to end");
    if (!s.ok()) return s;
    reaped_ = true;
    return status;
  }

 private:
  ForkBomb(pid_t pid, UniqueFd gate) : pid_(pid), gate_(std::move(gate)) {}
  pid_t pid_;
  UniqueFd gate_;
  bool reaped_ = false;
};

std::string RandomSuffix() {
  char bytes[6];
  if (::getrandom(bytes, sizeof(bytes), 0) != sizeof(bytes)) return absl::StrCat(::getpid());
  return absl::BytesToHexString(absl::string_view(bytes, sizeof(bytes)));
}

std::string MustRead(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? std::string(absl::StripAsciiWhitespace(*text)) : "";
}

class CgroupsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MESH_REQUIRE_ROOT();
    ASSERT_TRUE(mesh::testing::InSandbox()) << "run through the sandbox (sandbox_main.cc)";
    absl::StatusOr<CgroupLayout> layout = ReadCgroupLayout();
    ASSERT_TRUE(layout.ok()) << layout.status();
    layout_ = std::move(*layout);
    CgroupDriverOptions options;
    parent_ = "mesh-test-cg-" + RandomSuffix();
    options.parent = parent_;
    options.timeout = absl::Seconds(10);
    absl::StatusOr<std::unique_ptr<CgroupDriver>> driver = DetectCgroupDriver(layout_, options);
    ASSERT_TRUE(driver.ok()) << driver.status();
    driver_ = std::move(*driver);
  }

  void TearDown() override {
    if (driver_ == nullptr) return;
    // Whatever a failed test left: every cgroup under the parent, then the parent.
    absl::StatusOr<std::vector<std::string>> names = driver_->List();
    ASSERT_TRUE(names.ok()) << names.status();
    EXPECT_THAT(*names, IsEmpty()) << "a test leaked cgroups";
    for (const std::string& name : *names) {
      absl::StatusOr<std::unique_ptr<Cgroup>> leftover = driver_->Attach(name);
      if (leftover.ok()) {
        EXPECT_TRUE((*leftover)->Destroy().ok());
      }
    }
    absl::Status removed = driver_->RemoveParent();
    EXPECT_TRUE(removed.ok()) << removed;
    for (const std::string& parent : driver_->ParentPaths()) {
      EXPECT_FALSE(KernelCgroupFs().Exists(parent)) << parent;
    }
  }

  std::unique_ptr<Cgroup> Create(const std::string& name) {
    absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = driver_->Create(name);
    EXPECT_TRUE(cgroup.ok()) << cgroup.status();
    return cgroup.ok() ? std::move(*cgroup) : nullptr;
  }
  bool v1() const { return driver_->version() == CgroupVersion::kV1; }
  // The cgroup's directory in the hierarchy of `controller` (v2: its only directory).
  std::string Dir(const Cgroup& cgroup, const std::string& controller) {
    if (!v1()) return cgroup.Paths().front();
    return absl::StrCat(layout_.v1.at(controller), "/", parent_, "/", cgroup.name());
  }

  CgroupLayout layout_;
  std::string parent_;
  std::unique_ptr<CgroupDriver> driver_;
};

TEST_F(CgroupsTest, CreateOpenDestroyInEveryHierarchy) {
  ScopedCgroup cgroup(Create("life"));
  ASSERT_NE(&*cgroup, nullptr);
  std::vector<std::string> paths = cgroup->Paths();
  if (v1()) {
    // One directory per hierarchy of memory, cpu, cpuacct, pids, freezer and devices.
    for (const char* c : {"memory", "cpu", "cpuacct", "pids", "freezer", "devices"}) {
      EXPECT_THAT(paths, Contains(Dir(*cgroup, c))) << c;
    }
  } else {
    ASSERT_EQ(paths.size(), 1u);
    EXPECT_GE(cgroup->dir_fd(), 0);
  }
  for (const std::string& path : paths) {
    EXPECT_TRUE(KernelCgroupFs().Exists(path + "/cgroup.procs")) << path;
  }
  EXPECT_EQ(driver_->Create("life").status().code(), absl::StatusCode::kAlreadyExists);
  absl::StatusOr<std::unique_ptr<Cgroup>> opened = driver_->Open("life");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ((*opened)->Paths(), paths);

  ASSERT_TRUE((*opened)->Destroy().ok());
  for (const std::string& path : paths) EXPECT_FALSE(KernelCgroupFs().Exists(path)) << path;
  EXPECT_TRUE(cgroup->Destroy().ok());  // Idempotent.
  EXPECT_EQ(driver_->Open("life").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CgroupsTest, PartialLeftoverIsListedAndRemoved) {
  // What a crash in the middle of Create leaves: the cgroup in the first hierarchy only.
  const std::string partial = driver_->ParentPaths().front() + "/half";
  ScopedCgroup full(Create("full"));  // Makes the parent directories.
  ASSERT_TRUE(KernelCgroupFs().MakeDir(partial).ok());
  absl::StatusOr<std::vector<std::string>> names = driver_->List();
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_THAT(*names, ::testing::ElementsAre("full", "half"));
  absl::StatusOr<std::unique_ptr<Cgroup>> half = driver_->Attach("half");
  ASSERT_TRUE(half.ok()) << half.status();
  absl::Status destroyed = (*half)->Destroy();
  EXPECT_TRUE(destroyed.ok()) << destroyed;
  EXPECT_FALSE(KernelCgroupFs().Exists(partial));
}

TEST_F(CgroupsTest, MemoryHogIsOomKilledAndReportedAsSuch) {
  ScopedCgroup cgroup(Create("hog"));
  ASSERT_NE(&*cgroup, nullptr);
  Resources r;
  r.memory_limit = 32 * kMiB;
  ASSERT_TRUE(cgroup->Apply(r).ok());
  absl::StatusOr<Resources> limits = cgroup->Limits();
  ASSERT_TRUE(limits.ok()) << limits.status();
  EXPECT_EQ(limits->memory_limit, 32 * kMiB);
  if (v1()) {
    EXPECT_EQ(MustRead(Dir(*cgroup, "memory") + "/memory.limit_in_bytes"), "33554432");
  } else {
    EXPECT_EQ(MustRead(cgroup->Paths().front() + "/memory.max"), "33554432");
  }
  absl::StatusOr<uint64_t> before = cgroup->OomKillCount();
  ASSERT_TRUE(before.ok()) << before.status();

  // The shell doubles a string until the memory cgroup has no more to give: no swap here
  // (memory_swap unset means none), so the OOM killer must step in.
  absl::StatusOr<GatedScript> hog = StartGated("x=0123456789abcdef; while :; do x=$x$x; done");
  ASSERT_TRUE(hog.ok()) << hog.status();
  ASSERT_TRUE(cgroup->AddProcess(hog->process.pid()).ok());
  ASSERT_TRUE(hog->Go().ok());
  absl::StatusOr<ExitStatus> exit = hog->process.Wait(absl::Seconds(60));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->signal, SIGKILL) << exit->ToString();

  absl::StatusOr<uint64_t> after = cgroup->OomKillCount();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GE(*after, *before + 1);
  EXPECT_TRUE(WasOomKilled(exit->signal, *before, *after));
  absl::StatusOr<CgroupStats> stats = cgroup->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->oom_kills, *after);
  if (stats->memory_peak_bytes) {
    // It really got to the limit, and not past it.
    EXPECT_GE(*stats->memory_peak_bytes, uint64_t{24 * kMiB});
    EXPECT_LE(*stats->memory_peak_bytes, uint64_t{32 * kMiB});
  }
}

TEST_F(CgroupsTest, ForkBombIsContainedAndKillAllEndsIt) {
  ScopedCgroup cgroup(Create("bomb"));
  ASSERT_NE(&*cgroup, nullptr);
  Resources r;
  r.pids_limit = 16;
  ASSERT_TRUE(cgroup->Apply(r).ok());
  EXPECT_EQ(MustRead(Dir(*cgroup, "pids") + "/pids.max"), "16");

  absl::StatusOr<std::unique_ptr<ForkBomb>> bomb = ForkBomb::Start();
  ASSERT_TRUE(bomb.ok()) << bomb.status();
  ASSERT_TRUE(cgroup->AddProcess((*bomb)->pid()).ok());
  ASSERT_TRUE((*bomb)->Go().ok());

  // It reaches the limit and the kernel refuses more...
  absl::Status full = WaitFor(
      [&] {
        absl::StatusOr<CgroupStats> s = cgroup->Stats();
        return s.ok() && s->pids_current == 16 && s->pids_rejected > 0;
      },
      absl::Seconds(10), "the fork bomb to hit pids.max");
  ASSERT_TRUE(full.ok()) << full;
  // ...and never gets past it while it keeps trying.
  uint64_t most = 0, rejected_before = 0, rejected_after = 0;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<CgroupStats> s = cgroup->Stats();
    ASSERT_TRUE(s.ok()) << s.status();
    if (i == 0) rejected_before = s->pids_rejected;
    rejected_after = s->pids_rejected;
    most = std::max(most, s->pids_current);
    absl::StatusOr<std::vector<pid_t>> pids = cgroup->Pids();
    ASSERT_TRUE(pids.ok()) << pids.status();
    EXPECT_LE(pids->size(), 16u);
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(most, 16u);
  EXPECT_GT(rejected_after, rejected_before) << "the bomb stopped trying";

  absl::Time start = absl::Now();
  absl::Status killed = cgroup->KillAll(SIGKILL);
  ASSERT_TRUE(killed.ok()) << killed;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  absl::StatusOr<std::vector<pid_t>> left = cgroup->Pids();
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_THAT(*left, IsEmpty());
  absl::StatusOr<int> status = (*bomb)->Wait(absl::Seconds(5));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
}

TEST_F(CgroupsTest, CpuQuotaIsAppliedAndThrottles) {
  ScopedCgroup cgroup(Create("cpu"));
  ASSERT_NE(&*cgroup, nullptr);
  Resources r;
  r.cpu_quota = 50000;
  r.cpu_period = 100000;
  r.cpu_shares = 512;
  ASSERT_TRUE(cgroup->Apply(r).ok());
  // Read back from the cgroup, by the driver and straight from the files.
  absl::StatusOr<Resources> limits = cgroup->Limits();
  ASSERT_TRUE(limits.ok()) << limits.status();
  EXPECT_EQ(limits->cpu_quota, 50000);
  EXPECT_EQ(limits->cpu_period, 100000u);
  if (v1()) {
    EXPECT_EQ(MustRead(Dir(*cgroup, "cpu") + "/cpu.cfs_quota_us"), "50000");
    EXPECT_EQ(MustRead(Dir(*cgroup, "cpu") + "/cpu.cfs_period_us"), "100000");
    EXPECT_EQ(MustRead(Dir(*cgroup, "cpu") + "/cpu.shares"), "512");
    EXPECT_EQ(limits->cpu_shares, 512u);
  } else {
    EXPECT_EQ(MustRead(cgroup->Paths().front() + "/cpu.max"), "50000 100000");
    EXPECT_EQ(MustRead(cgroup->Paths().front() + "/cpu.weight"),
              absl::StrCat(CpuSharesToWeight(512)));
  }

  // A tight loop under 10% of a CPU gets throttled, and gets about what it is allowed.
  Resources tight;
  tight.cpu_quota = 10000;
  ASSERT_TRUE(cgroup->Apply(tight).ok());
  absl::StatusOr<GatedScript> spin = StartGated("while :; do :; done");
  ASSERT_TRUE(spin.ok()) << spin.status();
  ASSERT_TRUE(cgroup->AddProcess(spin->process.pid()).ok());
  ASSERT_TRUE(spin->Go().ok());
  absl::SleepFor(absl::Milliseconds(600));
  absl::StatusOr<CgroupStats> stats = cgroup->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GT(stats->cpu_throttled_periods, 0u);
  EXPECT_GT(stats->cpu_usage_ns, 0u);
  EXPECT_LT(stats->cpu_usage_ns, uint64_t{300'000'000}) << "600 ms at 10% is about 60 ms";
}

TEST_F(CgroupsTest, StatsShowMemoryCpuAndPids) {
  ScopedCgroup cgroup(Create("stats"));
  ASSERT_NE(&*cgroup, nullptr);
  // Holds a 4 MiB string, burns some CPU, then waits with a child running beside it.
  absl::StatusOr<GatedScript> script = StartGated(
      "x=0123456789abcdef; i=0; while [ $i -lt 18 ]; do x=$x$x; i=$((i+1)); done; "
      "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; "
      "busybox sleep 60 & echo ready; read -r _");
  ASSERT_TRUE(script.ok()) << script.status();
  ASSERT_TRUE(cgroup->AddProcess(script->process.pid()).ok());
  ASSERT_TRUE(script->Go().ok());
  absl::StatusOr<std::string> line = script->ReadLine(absl::Seconds(30));
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, "ready");

  absl::StatusOr<CgroupStats> stats = cgroup->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GE(stats->memory_usage_bytes, uint64_t{4 * kMiB});
  if (stats->memory_peak_bytes) {
    EXPECT_GE(*stats->memory_peak_bytes, stats->memory_usage_bytes);
  }
  EXPECT_GT(stats->cpu_usage_ns, uint64_t{1'000'000});
  EXPECT_EQ(stats->pids_current, 2u);
  EXPECT_EQ(stats->oom_kills, 0u);
  absl::StatusOr<std::vector<pid_t>> pids = cgroup->Pids();
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_EQ(pids->size(), 2u);
  EXPECT_THAT(*pids, Contains(script->process.pid()));
}

TEST_F(CgroupsTest, FreezeStopsEveryProcessAndThawResumes) {
  ScopedCgroup cgroup(Create("freeze"));
  ASSERT_NE(&*cgroup, nullptr);
  absl::StatusOr<GatedScript> spin = StartGated("while :; do :; done");
  ASSERT_TRUE(spin.ok()) << spin.status();
  ASSERT_TRUE(cgroup->AddProcess(spin->process.pid()).ok());
  ASSERT_TRUE(spin->Go().ok());
  auto cpu = [&] {
    absl::StatusOr<CgroupStats> s = cgroup->Stats();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? s->cpu_usage_ns : 0;
  };
  ASSERT_TRUE(
      WaitFor([&] { return cpu() > 10'000'000; }, absl::Seconds(10), "the loop to run").ok());

  ASSERT_TRUE(cgroup->Freeze().ok());
  uint64_t frozen_at = cpu();
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_LT(cpu() - frozen_at, uint64_t{5'000'000}) << "ran while frozen";

  ASSERT_TRUE(cgroup->Thaw().ok());
  uint64_t thawed_at = cpu();
  EXPECT_TRUE(WaitFor([&] { return cpu() > thawed_at + 50'000'000; }, absl::Seconds(10),
                      "the loop to run again")
                  .ok());
}

TEST_F(CgroupsTest, OpenReattachesAndDestroyKillsWhatRuns) {
  std::vector<std::string> paths;
  absl::StatusOr<GatedScript> sleeper = StartGated("exec busybox sleep 60");
  ASSERT_TRUE(sleeper.ok()) << sleeper.status();
  {
    std::unique_ptr<Cgroup> created = Create("agent");
    ASSERT_NE(created, nullptr);
    Resources r;
    r.pids_limit = 20;
    ASSERT_TRUE(created->Apply(r).ok());
    ASSERT_TRUE(created->AddProcess(sleeper->process.pid()).ok());
    ASSERT_TRUE(sleeper->Go().ok());
    paths = created->Paths();
  }  // The handle goes, as when meshd restarts; the cgroup stays.

  absl::StatusOr<std::unique_ptr<Cgroup>> opened = driver_->Open("agent");
  ASSERT_TRUE(opened.ok()) << opened.status();
  ScopedCgroup cgroup(std::move(*opened));
  EXPECT_EQ(cgroup->Paths(), paths);
  absl::StatusOr<std::vector<pid_t>> pids = cgroup->Pids();
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_THAT(*pids, ::testing::ElementsAre(sleeper->process.pid()));
  absl::StatusOr<Resources> limits = cgroup->Limits();
  ASSERT_TRUE(limits.ok()) << limits.status();
  EXPECT_EQ(limits->pids_limit, 20);

  ASSERT_TRUE(cgroup->Destroy().ok());
  absl::StatusOr<ExitStatus> exit = sleeper->process.Wait(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->signal, SIGKILL);
  for (const std::string& path : paths) EXPECT_FALSE(KernelCgroupFs().Exists(path)) << path;
}

// What a process in a cgroup may do with devices: mknod of a block device and of /dev/null's
// numbers, open of the host's /dev/null and /dev/kmsg (1:11, not on the list). One line each.
constexpr char kDeviceProbe[] =
    "for t in 'sda b 8 0' 'null c 1 3'; do set -- $t; "
    "if mknod \"$D/$1\" $2 $3 $4 2>/tmp/mesh-test-err-$$; then echo \"mknod $1 ok\"; "
    "else echo \"mknod $1 failed: $(cat /tmp/mesh-test-err-$$)\"; fi; done; "
    "rm -f /tmp/mesh-test-err-$$; "
    "for d in /dev/null /dev/kmsg; do if (: < $d) 2>/dev/null; then echo \"open $d ok\"; "
    "else echo \"open $d failed\"; fi; done";

TEST_F(CgroupsTest, DefaultDeviceRulesRefuseMknodOfADiskAndAllowNull) {
  ScopedCgroup cgroup(Create("devices"));
  ASSERT_NE(&*cgroup, nullptr);
  Resources r;
  r.devices = {DeviceRule{.allow = false, .type = 'a'}};
  for (auto [major, minor] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 2}}) {
    r.devices.push_back(DeviceRule{.allow = true, .type = 'c', .major = major, .minor = minor});
  }
  r.devices.push_back(DeviceRule{.allow = true, .type = 'c', .major = 136});
  absl::Status applied = cgroup->Apply(r);
  ASSERT_TRUE(applied.ok()) << applied;
  if (v1()) {
    EXPECT_EQ(MustRead(Dir(*cgroup, "devices") + "/devices.list"),
              "c 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:2 rwm\n"
              "c 136:* rwm");
  }
  ::mesh::testing::ScopedTempDir dir("/tmp/mesh-test-dev-");
  ASSERT_FALSE(dir.path().empty());
  absl::StatusOr<GatedScript> probe =
      StartGated(absl::StrCat("D=", dir.path(), "; ", kDeviceProbe));
  ASSERT_TRUE(probe.ok()) << probe.status();
  ASSERT_TRUE(cgroup->AddProcess(probe->process.pid()).ok());
  ASSERT_TRUE(probe->Go().ok());
  std::vector<std::string> lines;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<std::string> line = probe->ReadLine(absl::Seconds(10));
    ASSERT_TRUE(line.ok()) << line.status();
    lines.push_back(*line);
  }
  EXPECT_THAT(lines, ::testing::ElementsAre(
                         ::testing::AllOf(::testing::HasSubstr("mknod sda failed"),
                                          ::testing::HasSubstr("Operation not permitted")),
                         "mknod null ok", "open /dev/null ok", "open /dev/kmsg failed"));
  absl::StatusOr<ExitStatus> exit = probe->process.Wait(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();

  // Every device again (a privileged container): the same cgroup, updated in place.
  Resources all;
  all.devices = {DeviceRule{.allow = true, .type = 'a'}};
  ASSERT_TRUE(cgroup->Apply(all).ok());
  if (v1()) {
    EXPECT_EQ(MustRead(Dir(*cgroup, "devices") + "/devices.list"), "a *:* rwm");
  }
  ::unlink((dir.path() + "/null").c_str());
  absl::StatusOr<GatedScript> again =
      StartGated(absl::StrCat("D=", dir.path(), "; ", kDeviceProbe));
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(cgroup->AddProcess(again->process.pid()).ok());
  ASSERT_TRUE(again->Go().ok());
  absl::StatusOr<std::string> first = again->ReadLine(absl::Seconds(10));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, "mknod sda ok");
  ASSERT_TRUE(again->process.Wait(absl::Seconds(10)).ok());
}

TEST_F(CgroupsTest, InvalidResourcesChangeNothing) {
  ScopedCgroup cgroup(Create("invalid"));
  ASSERT_NE(&*cgroup, nullptr);
  absl::StatusOr<Resources> before = cgroup->Limits();
  ASSERT_TRUE(before.ok()) << before.status();
  Resources r;
  r.memory_limit = -1;
  r.pids_limit = 8;
  absl::Status s = cgroup->Apply(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<Resources> after = cgroup->Limits();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->memory_limit, before->memory_limit);
  EXPECT_EQ(after->pids_limit, before->pids_limit);
  EXPECT_FALSE(after->pids_limit.has_value());
}

}  // namespace
}  // namespace mesh::runtime
