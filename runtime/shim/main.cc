#include <cstdio>
#include <string>

#include "runtime/shim/exec.h"
#include "runtime/shim/shim.h"

// mesh-shim <run_dir>                    supervise a new container (started by the runtime)
// mesh-shim exec <run_dir> <exec.json> [--resize-fd=3]
//                                        run one more process in a running container
int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "exec") {
    return mesh::runtime::shim::ExecMain(argv[2], argv[3], -1);
  }
  if (argc == 5 && std::string(argv[1]) == "exec" && std::string(argv[4]) == "--resize-fd=3") {
    return mesh::runtime::shim::ExecMain(argv[2], argv[3], 3);
  }
  return mesh::runtime::shim::Main(argc, argv);
}
