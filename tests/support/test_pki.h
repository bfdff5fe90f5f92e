#pragma once

// A throwaway PKI for mutual-TLS tests, made with the openssl command line in a directory the
// test owns: P-256 keys, certificates valid for two days. Each object `name` is the pair
// <dir>/<name>.pem (certificate) and <dir>/<name>.key (its unencrypted key).
//
// Create() makes the set every mTLS test needs:
//   ca              CA "mesh-test-ca"
//   server          signed by ca; subjectAltName IP:127.0.0.1 and DNS:localhost, serverAuth
//   client          signed by ca; CN "mesh-test-client", clientAuth
//   foreign-ca      another CA, "foreign-ca"
//   foreign-client  signed by foreign-ca; CN "foreign-client", clientAuth
// Key generation is the slow part (about a second in all): make one per suite.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mesh::testing {

class TestPki {
 public:
  static constexpr char kCa[] = "ca";
  static constexpr char kServer[] = "server";
  static constexpr char kClient[] = "client";
  static constexpr char kClientCommonName[] = "mesh-test-client";
  static constexpr char kForeignCa[] = "foreign-ca";
  static constexpr char kForeignClient[] = "foreign-client";
  static constexpr char kForeignClientCommonName[] = "foreign-client";
  // The name the server certificate holds besides 127.0.0.1 (for GRPC_SSL_TARGET_NAME_OVERRIDE_ARG
  // when the target has no host, as a unix: socket).
  static constexpr char kServerName[] = "localhost";

  enum class Usage { kServer, kClient };

  // Writes openssl.cnf into `dir` (which must exist) and makes the set above. The error names
  // the openssl command that failed and carries its stderr.
  static absl::StatusOr<TestPki> Create(std::string dir);

  // A self-signed CA with subject CN=`common_name`.
  absl::Status MakeCa(const std::string& name, const std::string& common_name);
  // A certificate for `usage`, signed by the CA `ca` (made by MakeCa).
  absl::Status MakeCertificate(const std::string& name, const std::string& common_name,
                               const std::string& ca, Usage usage);
  // Runs `openssl <args>`; an error with its stderr unless it exits 0.
  absl::Status Openssl(std::vector<std::string> args) const;

  std::string Cert(const std::string& name) const { return File(name + ".pem"); }
  std::string Key(const std::string& name) const { return File(name + ".key"); }
  // Any file in the PKI's directory.
  std::string File(const std::string& file_name) const { return dir_ + "/" + file_name; }
  const std::string& dir() const { return dir_; }

 private:
  explicit TestPki(std::string dir) : dir_(std::move(dir)) {}

  std::string dir_;
  int serial_ = 0;
};

}  // namespace mesh::testing
