#pragma once

// What `exec`, `logs` and `run` share.

#include <string>
#include <vector>

#include "cli/cli.h"

namespace mesh::cli {

struct ExecOptions {
  std::string container;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string working_dir;
  std::string user;
  bool interactive = false;
  bool tty = false;
};
// Runs the exec through meshd with this terminal's stdio: the command's exit code, or
// kExitExecFailed (the reason printed) when it could not be run through meshd.
int RunExec(Cli& cli, const ExecOptions& options);

// Prints the log entries of `request` (stdout's to stdout, stderr's to stderr) until meshd
// ends the stream: the exit code.
int FollowLogs(Cli& cli, const v1::LogsRequest& request, bool timestamps);

}  // namespace mesh::cli
