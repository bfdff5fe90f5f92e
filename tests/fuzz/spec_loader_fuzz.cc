// libFuzzer target for meshctl's group spec loader (TESTING.md #20): any bytes give a spec or
// INVALID_ARGUMENT, and SourceMap::Locate takes any message. Built with clang only:
//
//   cmake --preset asan -DMESH_BUILD_FUZZERS=ON && cmake --build build/asan --target
//   spec_loader_fuzz mkdir -p /tmp/spec-corpus && cp deploy/examples/*.yaml /tmp/spec-corpus/
//   build/asan/tests/spec_loader_fuzz -max_total_time=300 -max_len=65536 \
//       -dict=tests/fuzz/spec_loader.dict /tmp/spec-corpus
//
// env_file and volume paths are resolved against a directory that does not exist; absolute
// env_file paths are read (regular files only, 1 MiB at most).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "cli/spec/spec_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  mesh::cli::SpecOptions options;
  options.base_dir = "/nonexistent/mesh-fuzz";
  absl::StatusOr<mesh::cli::LoadedSpec> spec = mesh::cli::ParseSpec(text, "fuzz.yaml", options);
  if (!spec.ok()) {
    if (spec.status().code() != absl::StatusCode::kInvalidArgument ||
        spec.status().message().empty()) {
      std::abort();
    }
    return 0;
  }
  // The input as a meshd message, against the map of the spec it gave.
  (void)spec->sources.Locate(text);
  (void)spec->sources.Locate("spec.containers[0].spec.ports[0].host_port: 70000 is not a port");
  return 0;
}
