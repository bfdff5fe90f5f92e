// meshctl: the mesh command line. Every command goes through meshd's public gRPC API.
#include <cstdio>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "base/version.h"
#include "cli/cli.h"
#include "cli/commands/completion.h"

int main(int argc, char** argv) {
  using namespace mesh::cli;
  CLI::App app{"meshctl: run and inspect container groups on a mesh host", "meshctl"};
  app.set_version_flag("--version", std::string("meshctl ") + mesh::kVersion + " (commit " +
                                        mesh::kGitCommit + ", API " + mesh::kApiVersion + ")");
  Cli cli;
  app.add_option("-H,--host", cli.host.host,
                 "meshd to talk to: unix:///path/to.sock or tcp://host:port (default: "
                 "$MESH_HOST, else " +
                     std::string(kDefaultHost) + ")");
  app.add_option("--tls-cert", cli.host.tls_cert, "client certificate (PEM), for tcp://");
  app.add_option("--tls-key", cli.host.tls_key, "client key (PEM), for tcp://");
  app.add_option("--tls-ca", cli.host.tls_ca, "CA of meshd's certificate (PEM), for tcp://");
  app.add_option("-o,--output", cli.output, "output format: table, json or yaml")
      ->default_str("table");
  app.require_subcommand(1);
  app.fallthrough();  // global flags also after the command: `meshctl ps -o json`

  AddContainerCommands(app, cli);
  AddRunCommand(app, cli);
  AddNetworkCommands(app, cli);
  AddImageCommands(app, cli);
  AddGroupCommands(app, cli);
  AddCheckCommand(app, cli);
  AddSystemCommands(app, cli);
  AddCompletionCommand(app, cli);  // last: it walks the others

  if (argc == 1) {  // as docker and kubectl: the help
    std::fputs(app.help().c_str(), stderr);
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (std::optional<std::string> unknown = UnknownCommandMessage(app)) {
      std::fprintf(stderr, "%s\n", unknown->c_str());
      return kExitUsage;
    }
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  return cli.exit_code;
}
