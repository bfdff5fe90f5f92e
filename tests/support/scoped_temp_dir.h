#pragma once

// A temporary directory on the host for a test (device nodes, scratch files), removed with
// everything in it when the test ends.

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace mesh::testing {

class ScopedTempDir {
 public:
  // `prefix`: e.g. "/tmp/mesh-test-dev-"; six random characters follow.
  explicit ScopedTempDir(std::string prefix) {
    std::string tmpl = prefix + "XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~ScopedTempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  // Empty if it could not be made.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace mesh::testing
