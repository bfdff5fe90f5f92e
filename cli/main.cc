// meshctl: the mesh command line.
#include <cstdio>

#include "CLI/CLI.hpp"
#include "base/version.h"

int main(int argc, char** argv) {
  CLI::App app{"meshctl: run and inspect container groups on a mesh host", "meshctl"};
  app.set_version_flag("--version", std::string("meshctl ") + mesh::kVersion + " (commit " +
                                        mesh::kGitCommit + ", API " + mesh::kApiVersion + ")");
  CLI::App* version = app.add_subcommand("version", "Print the client's version");
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);

  if (version->parsed()) {
    std::printf("meshctl %s (commit %s, API %s)\n", mesh::kVersion, mesh::kGitCommit,
                mesh::kApiVersion);
  }
  return 0;
}
