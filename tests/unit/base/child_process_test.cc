#include "base/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mesh {
namespace {

using ::testing::HasSubstr;

CommandResult MustRun(std::vector<std::string> argv, absl::Duration timeout = absl::Seconds(10)) {
  SpawnOptions o;
  o.argv = std::move(argv);
  absl::StatusOr<CommandResult> r = RunCommand(o, timeout);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : CommandResult{};
}

TEST(ChildProcessTest, CapturesStdoutStderrAndExitCode) {
  CommandResult r = MustRun({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.status.code, 3);
  EXPECT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.ToString(), "exited with code 3");
}

TEST(ChildProcessTest, LooksUpProgramsInPathAndPassesEnvironment) {
  SpawnOptions o;
  o.argv = {"sh", "-c", "echo $GREETING"};
  o.env = std::vector<std::string>{"GREETING=hello", "PATH=/usr/bin:/bin"};
  absl::StatusOr<CommandResult> r = RunCommand(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "hello\n");
}

TEST(ChildProcessTest, MissingProgramIsNotFoundAndLeavesNoChild) {
  SpawnOptions o;
  o.argv = {"/nonexistent/program", "x"};
  absl::StatusOr<ChildProcess> c = ChildProcess::Spawn(o);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("/nonexistent/program"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("ENOENT"));
}

TEST(ChildProcessTest, OnlyStdioFdsReachTheChild) {
  // An fd opened without O_CLOEXEC by someone else must not leak into the new program.
  int leaky = dup(STDERR_FILENO);  // dup() does not set FD_CLOEXEC
  ASSERT_GE(leaky, 3);
  CommandResult r = MustRun({"/bin/sh", "-c", "ls /proc/self/fd"});
  close(leaky);
  // The shell itself, then `ls`, sees 0, 1, 2 and its own directory fd (3).
  EXPECT_EQ(r.out, "0\n1\n2\n3\n");
}

TEST(ChildProcessTest, Fd3IsPassedWhenAsked) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "echo through-3 >&3; ls /proc/self/fd >&3"};
  o.fd3 = p[1];
  absl::StatusOr<ChildProcess> c = ChildProcess::Spawn(o);
  close(p[1]);
  ASSERT_TRUE(c.ok()) << c.status();
  std::string got;
  char buf[256];
  for (ssize_t n; (n = read(p[0], buf, sizeof(buf))) > 0;) got.append(buf, static_cast<size_t>(n));
  close(p[0]);
  ASSERT_TRUE(c->Wait().ok());
  // 0-3, and `ls`'s own directory fd (4): nothing else.
  EXPECT_EQ(got, "through-3\n0\n1\n2\n3\n4\n");
}

TEST(ChildProcessTest, TimeoutKillsAndReportsDeadlineExceeded) {
  SpawnOptions o;
  o.argv = {"sleep", "30"};
  absl::Time start = absl::Now();
  absl::StatusOr<CommandResult> r = RunCommand(o, absl::Milliseconds(200));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(ChildProcessTest, SignalStopAndDestructorReap) {
  SpawnOptions o;
  o.argv = {"sleep", "30"};
  absl::StatusOr<ChildProcess> c = ChildProcess::Spawn(o);
  ASSERT_TRUE(c.ok()) << c.status();
  pid_t pid = c->pid();
  EXPECT_TRUE(c->running());
  EXPECT_EQ(c->Wait(absl::Milliseconds(50)).status().code(), absl::StatusCode::kDeadlineExceeded);
  absl::StatusOr<ExitStatus> s = c->Stop(absl::Seconds(5));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->signal, SIGTERM);
  EXPECT_EQ(s->ToString(), "killed by signal SIGTERM");
  EXPECT_FALSE(c->running());
  EXPECT_TRUE(c->Signal(SIGKILL).ok());  // nothing left to signal is not an error
  // Reaped: the pid no longer names a child of ours.
  EXPECT_EQ(kill(pid, 0), -1);

  absl::StatusOr<ChildProcess> d = ChildProcess::Spawn(o);
  ASSERT_TRUE(d.ok());
  pid_t dpid = d->pid();
  { ChildProcess owned = std::move(*d); }
  EXPECT_EQ(kill(dpid, 0), -1);  // killed and reaped by the destructor
}

}  // namespace
}  // namespace mesh
