// meshd: the mesh agent.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <iostream>

#include "agent/api/version.h"
#include "agent/config/config.h"
#include "agent/daemon.h"
#include "base/log.h"

int main(int argc, char** argv) {
  absl::StatusOr<mesh::agent::CommandLine> command = mesh::agent::ParseCommandLine(argc, argv);
  if (!command.ok()) {
    std::cerr << "meshd: " << command.status().message() << "\n";
    return 2;
  }
  if (command->help) {
    std::cout << command->help_text;
    return 0;
  }
  if (command->version) {
    mesh::v1::VersionResponse v = mesh::agent::CurrentVersion();
    std::printf("meshd %s (commit %s, API %s, kernel %s)\n", v.version().c_str(),
                v.git_commit().c_str(), v.api_version().c_str(), v.kernel().c_str());
    return 0;
  }
  if (absl::StatusOr<mesh::log::Level> level = mesh::log::ParseLevel(command->config.log_level);
      level.ok()) {
    mesh::log::SetLevel(*level);
  }
  // SIGTERM and SIGINT are taken by sigwait below: block them before any thread starts, so
  // every thread inherits the mask. A client that goes away must not kill meshd: no SIGPIPE.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<mesh::agent::Daemon>> daemon =
      mesh::agent::Daemon::Start(command->config);
  if (!daemon.ok()) {
    std::cerr << "meshd: " << daemon.status().message() << "\n";
    return 1;
  }
  int signal_number = 0;
  sigwait(&stop, &signal_number);
  MESH_LOG(Info) << "meshd: got " << strsignal(signal_number);
  const absl::Time stopping = absl::Now();
  (*daemon)->Shutdown();
  daemon->reset();
  MESH_LOG(Info) << "meshd stopped in " << (absl::Now() - stopping);
  return 0;
}
