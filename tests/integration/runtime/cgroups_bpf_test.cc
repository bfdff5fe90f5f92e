// cgroup v2 device control for real: the BPF device program (runtime/cgroups/devices.h) loaded,
// attached to a cgroup2 directory and enforced by the kernel, as root, in the sandbox.
//
// This works on the CI machines' hybrid layout too: their cgroup2 mount at
// /sys/fs/cgroup/unified holds no controller, but BPF device programs attach to any cgroup2
// directory, and the kernel runs them before the v1 devices controller
// (devcgroup_check_permission). Each test makes its own "mesh-test-bpf-<random>" cgroup there,
// and removes it (killing its processes first) however the test ends; the sandbox launcher
// sweeps stale "/sys/fs/cgroup/*/mesh-test-*" directories.
#include <fcntl.h>
#include <linux/bpf.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/child_process.h"
#include "base/unique_fd.h"
#include "base/wait.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/cgroups/cgroup.h"
#include "runtime/cgroups/devices.h"
#include "runtime/spec/defaults.h"
#include "tests/support/sandbox.h"
#include "tests/support/scoped_temp_dir.h"

namespace mesh::runtime {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string RandomSuffix() {
  char bytes[6];
  if (::getrandom(bytes, sizeof(bytes), 0) != sizeof(bytes)) return absl::StrCat(::getpid());
  return absl::BytesToHexString(absl::string_view(bytes, sizeof(bytes)));
}

// A cgroup2 directory of our own, removed when the test ends (its processes must be gone by
// then: the ChildProcess guards declared after it are destroyed first).
class ScopedV2Cgroup {
 public:
  explicit ScopedV2Cgroup(std::string dir) : dir_(std::move(dir)) {}
  ~ScopedV2Cgroup() {
    if (dir_.empty()) return;
    // Processes leave a moment after they die.
    absl::Status removed =
        WaitFor([&] { return ::rmdir(dir_.c_str()) == 0 || errno == ENOENT; }, absl::Seconds(10),
                absl::StrCat("cgroup ", dir_, " to be removable"));
    EXPECT_TRUE(removed.ok()) << removed;
  }
  ScopedV2Cgroup(const ScopedV2Cgroup&) = delete;
  ScopedV2Cgroup& operator=(const ScopedV2Cgroup&) = delete;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// Runs the device probe (one line per attempt) in `cgroup_dir`: the shell waits on its stdin
// until it has been moved there. Returns its output lines.
absl::StatusOr<std::vector<std::string>> ProbeDevices(const std::string& cgroup_dir,
                                                      const std::string& node_dir) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
    return absl::InternalError("pipe2");
  }
  UniqueFd in_read(in[0]), gate(in[1]), out_read(out[0]), out_write(out[1]);
  SpawnOptions options;
  options.argv = {
      "busybox", "sh", "-c",
      absl::StrCat(
          "read -r _; D=", node_dir,
          "; for t in 'sda b 8 0' 'null c 1 3'; do set -- $t; rm -f \"$D/$1\"; "
          "if err=$(mknod \"$D/$1\" $2 $3 $4 2>&1); then echo \"mknod $1 ok\"; "
          "else echo \"mknod $1 failed: $err\"; fi; done; "
          "for d in /dev/null /dev/kmsg; do if (: < $d) 2>/dev/null; then echo \"open $d ok\"; "
          "else echo \"open $d failed\"; fi; done")};
  options.stdin_fd = in_read.get();
  options.stdout_fd = out_write.get();
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(options);
  if (!child.ok()) return child.status();
  in_read.Reset();
  out_write.Reset();
  const std::string procs = cgroup_dir + "/cgroup.procs";
  absl::Status moved = KernelCgroupFs().Write(procs, absl::StrCat(child->pid()));
  if (!moved.ok()) return moved;
  if (::write(gate.get(), "go\n", 3) != 3) return absl::InternalError("write to the gate");
  std::string text;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  char buf[512];
  while (absl::Now() < deadline) {
    pollfd pfd{out_read.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 100) <= 0) continue;
    ssize_t n = ::read(out_read.get(), buf, sizeof(buf));
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  absl::StatusOr<ExitStatus> exit = child->Wait(absl::Seconds(10));
  if (!exit.ok()) return exit.status();
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  return lines;
}

// The ids of the device programs attached to `dir` itself.
std::vector<uint32_t> AttachedPrograms(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  EXPECT_TRUE(fd.valid()) << dir;
  uint32_t ids[16] = {};
  bpf_attr attr{};
  attr.query.target_fd = static_cast<uint32_t>(fd.get());
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = reinterpret_cast<uint64_t>(ids);
  attr.query.prog_cnt = 16;
  EXPECT_EQ(::syscall(SYS_bpf, BPF_PROG_QUERY, &attr, sizeof(attr)), 0) << strerror(errno);
  return std::vector<uint32_t>(ids, ids + attr.query.prog_cnt);
}

class CgroupBpfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MESH_REQUIRE_ROOT();
    ASSERT_TRUE(mesh::testing::InSandbox()) << "run through the sandbox (sandbox_main.cc)";
    absl::StatusOr<CgroupLayout> layout = ReadCgroupLayout();
    ASSERT_TRUE(layout.ok()) << layout.status();
    if (!layout->v2) GTEST_SKIP() << "no cgroup2 hierarchy is mounted";
    root_ = *layout->v2;
  }
  std::string root_;
};

TEST_F(CgroupBpfTest, DefaultProgramRefusesADiskAndAllowsNull) {
  const std::string dir = absl::StrCat(root_, "/mesh-test-bpf-", RandomSuffix());
  ASSERT_TRUE(KernelCgroupFs().MakeDir(dir).ok());
  ScopedV2Cgroup cgroup(dir);
  ::mesh::testing::ScopedTempDir nodes("/tmp/mesh-test-bpf-");
  ASSERT_FALSE(nodes.path().empty());

  absl::Status set =
      KernelCgroupFs().SetDeviceProgram(dir, DeviceProgram(DefaultDeviceRules(false)));
  ASSERT_TRUE(set.ok()) << set;
  EXPECT_EQ(AttachedPrograms(dir).size(), 1u);
  absl::StatusOr<std::vector<std::string>> lines = ProbeDevices(dir, nodes.path());
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_THAT(*lines, ElementsAre(AllOf(HasSubstr("mknod sda failed"),
                                        HasSubstr("Operation not permitted")),
                                  "mknod null ok", "open /dev/null ok", "open /dev/kmsg failed"));

  // Setting it again replaces it: one program, now allowing every device.
  set = KernelCgroupFs().SetDeviceProgram(dir, DeviceProgram(DefaultDeviceRules(true)));
  ASSERT_TRUE(set.ok()) << set;
  EXPECT_EQ(AttachedPrograms(dir).size(), 1u);
  lines = ProbeDevices(dir, nodes.path());
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_THAT(*lines, ElementsAre("mknod sda ok", "mknod null ok", "open /dev/null ok",
                                  "open /dev/kmsg ok"));
}

TEST_F(CgroupBpfTest, TheVerifiersWordsComeBackWhenItRefusesAProgram) {
  const std::string dir = absl::StrCat(root_, "/mesh-test-bpf-", RandomSuffix());
  ASSERT_TRUE(KernelCgroupFs().MakeDir(dir).ok());
  ScopedV2Cgroup cgroup(dir);
  // "exit" with r0 never written.
  std::vector<bpf_insn> bad = {bpf_insn{.code = BPF_JMP | BPF_EXIT}};
  absl::Status s = KernelCgroupFs().SetDeviceProgram(dir, bad);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(),
              AllOf(HasSubstr("load the device program"), HasSubstr("verifier:"), HasSubstr("R0")));
  EXPECT_TRUE(AttachedPrograms(dir).empty());
}

}  // namespace
}  // namespace mesh::runtime
