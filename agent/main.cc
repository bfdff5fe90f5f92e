// meshd: the mesh agent.
#include <cstdio>
#include <iostream>

#include "CLI/CLI.hpp"
#include "agent/api/version.h"

int main(int argc, char** argv) {
  CLI::App app{"meshd: the mesh agent (containers and networks for one Linux host)", "meshd"};
  bool show_version = false;
  app.add_flag("--version", show_version, "Print version information and exit");
  // Serving the API comes with the agent; until then meshd only answers --version.
  app.require_option(1);
  CLI11_PARSE(app, argc, argv);

  if (show_version) {
    mesh::v1::VersionResponse v = mesh::agent::CurrentVersion();
    std::printf("meshd %s (commit %s, API %s, kernel %s)\n", v.version().c_str(),
                v.git_commit().c_str(), v.api_version().c_str(), v.kernel().c_str());
  }
  return 0;
}
