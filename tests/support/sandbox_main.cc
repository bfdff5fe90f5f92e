// main() of every integration test binary: runs the tests inside the sandbox.
//
//   launcher (real host)            records the real host's network state, then forks
//     └─ A: unshare(net, mnt, pid, uts, ipc), forks
//          └─ B: pid 1 of the new pid namespace; private /proc, /sys, /run, /var/lib/mesh;
//               forks C, then reaps every orphan until C ends
//               └─ C: runs the tests
//   launcher                        after A ends: compares the real host with the record
//
// A and B die with their parent (PR_SET_PDEATHSIG), and every process in the pid namespace
// dies with B, so a crashed or killed test (ctest's timeout included) takes everything it made
// with it: its namespaces, links, mounts and nftables tables exist only inside. Cgroups are not
// namespaced: tests name theirs "mesh-test-*", and the launcher removes stale ones at start.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/child_process.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"
#include "tests/support/host_snapshot.h"
#include "tests/support/sandbox.h"

namespace {

constexpr char kTestCgroupPrefix[] = "mesh-test-";

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "sandbox: %s: %s\n", what, std::strerror(errno));
  std::fflush(stderr);
  _exit(125);
}

// Removes `path` and everything below it, leaf first; cgroup directories can only be rmdir'ed
// once they have no children and no processes.
void RemoveCgroupTree(const std::string& path) {
  if (DIR* dir = opendir(path.c_str())) {
    while (dirent* e = readdir(dir)) {
      if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 &&
          std::strcmp(e->d_name, "..") != 0) {
        RemoveCgroupTree(absl::StrCat(path, "/", e->d_name));
      }
    }
    closedir(dir);
  }
  if (rmdir(path.c_str()) != 0 && errno != ENOENT) {
    std::fprintf(stderr, "sandbox: stale test cgroup %s not removed: %s\n", path.c_str(),
                 std::strerror(errno));
  }
}

// The newest modification time in the tree at `path` (each cgroup directory's is its
// creation time).
time_t NewestMtime(const std::string& path) {
  struct stat st;
  time_t newest = stat(path.c_str(), &st) == 0 ? st.st_mtime : 0;
  if (DIR* dir = opendir(path.c_str())) {
    while (dirent* e = readdir(dir)) {
      if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 &&
          std::strcmp(e->d_name, "..") != 0) {
        newest = std::max(newest, NewestMtime(absl::StrCat(path, "/", e->d_name)));
      }
    }
    closedir(dir);
  }
  return newest;
}

// Cgroups left by an earlier crashed run: /sys/fs/cgroup/<hierarchy>/mesh-test-*. A tree with
// anything made in the last minute belongs to a test running now (ctest -j runs several
// binaries at once) and is left alone.
void SweepStaleTestCgroups() {
  const std::string root = "/sys/fs/cgroup";
  auto sweep_dir = [](const std::string& dir_path) {
    DIR* dir = opendir(dir_path.c_str());
    if (dir == nullptr) return;
    while (dirent* e = readdir(dir)) {
      if (e->d_type == DT_DIR &&
          std::strncmp(e->d_name, kTestCgroupPrefix, sizeof(kTestCgroupPrefix) - 1) == 0) {
        std::string stale = absl::StrCat(dir_path, "/", e->d_name);
        if (NewestMtime(stale) > time(nullptr) - 60) continue;
        std::fprintf(stderr, "sandbox: removing stale test cgroup %s\n", stale.c_str());
        RemoveCgroupTree(stale);
      }
    }
    closedir(dir);
  };
  sweep_dir(root);  // pure cgroup v2
  if (DIR* dir = opendir(root.c_str())) {
    while (dirent* e = readdir(dir)) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') sweep_dir(absl::StrCat(root, "/", e->d_name));
    }
    closedir(dir);
  }
}

void MountOrDie(const char* source, const char* target, const char* fstype, unsigned long flags,
                const char* data) {
  if (mount(source, target, fstype, flags, data) != 0) {
    Die(absl::StrCat("mount ", fstype ? fstype : source, " on ", target).c_str());
  }
}

void MkdirOrDie(const char* path, mode_t mode) {
  if (mkdir(path, mode) != 0 && errno != EEXIST) Die(absl::StrCat("mkdir ", path).c_str());
}

// True if `path` is `dir` or lies below it.
bool Under(const std::string& path, const std::string& dir) {
  return path == dir || path.starts_with(dir + "/");
}

// In the launcher, before anything is hidden: the sandbox covers /run with a tmpfs and
// /var/lib/mesh with another. Refuse to hide the test binary or the working directory (a
// checkout under /run would vanish), and make sure the state dir's mount point exists.
void CheckSandboxMountPoints() {
  char exe[4096] = {}, cwd[4096] = {};
  if (readlink("/proc/self/exe", exe, sizeof(exe) - 1) < 0) Die("readlink /proc/self/exe");
  if (getcwd(cwd, sizeof(cwd)) == nullptr) Die("getcwd");
  for (const char* covered : {"/run", mesh::testing::Sandbox::kStateDir}) {
    for (const char* path : {exe, cwd}) {
      if (Under(path, covered)) {
        std::fprintf(stderr,
                     "sandbox: %s lies under %s, which the sandbox covers with a tmpfs; build "
                     "and run the tests elsewhere\n",
                     path, covered);
        _exit(125);
      }
    }
  }
  // The state dir mesh would use on a real install; created empty if missing (what installing
  // mesh does too). Inside the sandbox a private tmpfs hides whatever it holds.
  MkdirOrDie(mesh::testing::Sandbox::kStateDir, 0700);
}

// In B: make the mount namespace private and give the test its own /proc, /sys, /run and
// state dir. /run holds /run/mesh, /run/netns and the scratch dir (TMPDIR).
void SetUpSandboxMounts() {
  MountOrDie(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
  MountOrDie("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  MountOrDie("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  MountOrDie("tmpfs", mesh::testing::Sandbox::kStateDir, "tmpfs", MS_NOSUID | MS_NODEV,
             "mode=0700");
  // A sysfs of our own network namespace (so /sys/class/net lists the sandbox's links), with
  // the host's cgroup hierarchies moved back under it.
  MkdirOrDie("/run/.sandbox-cgroup", 0700);
  MountOrDie("/sys/fs/cgroup", "/run/.sandbox-cgroup", nullptr, MS_BIND | MS_REC, nullptr);
  MountOrDie("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  MountOrDie("/run/.sandbox-cgroup", "/sys/fs/cgroup", nullptr, MS_MOVE, nullptr);
  rmdir("/run/.sandbox-cgroup");
  MkdirOrDie(mesh::testing::Sandbox::kRunDir, 0755);
  MkdirOrDie("/run/netns", 0755);
  MkdirOrDie(mesh::testing::Sandbox::kScratchDir, 0755);
  setenv("TMPDIR", mesh::testing::Sandbox::kScratchDir, 1);
}

int StatusToExitCode(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) {
    std::fprintf(stderr, "sandbox: test process killed by signal %s\n",
                 sigabbrev_np(WTERMSIG(wstatus)) ? sigabbrev_np(WTERMSIG(wstatus)) : "?");
    return 128 + WTERMSIG(wstatus);
  }
  return 125;
}

pid_t WaitOrDie(pid_t pid, int* wstatus) {
  pid_t r;
  do {
    r = waitpid(pid, wstatus, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) Die("waitpid");
  return r;
}

// `parent_alive` is the read end of a pipe whose write end only the parent holds: once the
// parent is gone it reads as hung up. (getppid() cannot tell: a parent outside our new pid
// namespace shows as 0 whether it lives or not.)
void DieWithParent(int parent_alive) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) Die("prctl(PR_SET_PDEATHSIG)");
  pollfd pfd{parent_alive, POLLIN, 0};
  if (poll(&pfd, 1, 0) != 0) _exit(125);  // The parent died before prctl took effect.
  close(parent_alive);
}

struct AlivePipe {
  int read_end = -1, write_end = -1;
  AlivePipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) Die("pipe2");
    read_end = fds[0];
    write_end = fds[1];
  }
};

// As init of the sandbox's pid namespace: reaps every process that ends (orphans of servers
// the tests started are reparented here) until `main_child` ends; returns its exit code.
int ReapUntil(pid_t main_child) {
  for (;;) {
    int wstatus = 0;
    pid_t r = waitpid(-1, &wstatus, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      Die("waitpid");
    }
    if (r == main_child) return StatusToExitCode(wstatus);
  }
}

int RunSandboxed() {
  CheckSandboxMountPoints();
  SweepStaleTestCgroups();
  absl::StatusOr<std::string> before = mesh::testing::TakeHostSnapshot();
  if (!before.ok()) {
    std::fprintf(stderr, "sandbox: %s\n", before.status().ToString().c_str());
    return 1;
  }
  // Handles on the real host, for tests that compare it themselves.
  mesh::UniqueFd real_net(open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  mesh::UniqueFd real_mnt(open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
  if (!real_net || !real_mnt) Die("open /proc/self/ns");

  std::fflush(nullptr);
  AlivePipe launcher_alive;
  pid_t a = fork();
  if (a < 0) Die("fork");
  if (a == 0) {
    close(launcher_alive.write_end);
    DieWithParent(launcher_alive.read_end);
    if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC) != 0) {
      Die("unshare");
    }
    AlivePipe a_alive;
    pid_t b = fork();
    if (b < 0) Die("fork");
    if (b == 0) {
      close(a_alive.write_end);
      DieWithParent(a_alive.read_end);
      SetUpSandboxMounts();
      if (sethostname("mesh-sandbox", 12) != 0) Die("sethostname");
      setenv("MESH_SANDBOX", "1", 1);
      setenv("MESH_REAL_NETNS_FD", absl::StrCat(real_net.get()).c_str(), 1);
      setenv("MESH_REAL_MNTNS_FD", absl::StrCat(real_mnt.get()).c_str(), 1);
      pid_t c = fork();
      if (c < 0) Die("fork");
      if (c == 0) {
        int rc = RUN_ALL_TESTS();
        std::fflush(nullptr);
        _exit(rc);
      }
      _exit(ReapUntil(c));
    }
    close(a_alive.read_end);
    int wstatus = 0;
    WaitOrDie(b, &wstatus);
    _exit(StatusToExitCode(wstatus));
  }
  close(launcher_alive.read_end);
  int wstatus = 0;
  WaitOrDie(a, &wstatus);
  int rc = StatusToExitCode(wstatus);

  absl::StatusOr<std::string> after = mesh::testing::TakeHostSnapshot();
  if (!after.ok()) {
    std::fprintf(stderr, "sandbox: %s\n", after.status().ToString().c_str());
    return 1;
  }
  if (*after != *before) {
    std::fprintf(stderr,
                 "sandbox: FAILED: the real host's network state changed during the test:\n%s",
                 mesh::testing::DiffLines(*before, *after).c_str());
    return 1;
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  // Listing tests (gtest_discover_tests at build time) and running as non-root need no
  // sandbox: without root the fixtures skip (or fail under CI=true) before touching anything.
  if (GTEST_FLAG_GET(list_tests) || geteuid() != 0 || mesh::testing::InSandbox()) {
    return RUN_ALL_TESTS();
  }
  return RunSandboxed();
}
