#include "tests/support/test_pki.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/atomic_file.h"
#include "base/child_process.h"
#include "base/status_macros.h"

namespace mesh::testing {
namespace {

// The extensions of each kind of certificate; `req` needs the empty [dn] with prompt = no
// since every subject comes from -subj.
constexpr char kOpensslConfig[] = R"([req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
subjectAltName = IP:127.0.0.1,DNS:localhost
extendedKeyUsage = serverAuth
[client]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
)";

}  // namespace

absl::StatusOr<TestPki> TestPki::Create(std::string dir) {
  TestPki pki(std::move(dir));
  MESH_RETURN_IF_ERROR(WriteFileAtomically(pki.File("openssl.cnf"), kOpensslConfig));
  MESH_RETURN_IF_ERROR(pki.MakeCa(kCa, "mesh-test-ca"));
  MESH_RETURN_IF_ERROR(pki.MakeCertificate(kServer, kServerName, kCa, Usage::kServer));
  MESH_RETURN_IF_ERROR(pki.MakeCertificate(kClient, kClientCommonName, kCa, Usage::kClient));
  MESH_RETURN_IF_ERROR(pki.MakeCa(kForeignCa, "foreign-ca"));
  MESH_RETURN_IF_ERROR(
      pki.MakeCertificate(kForeignClient, kForeignClientCommonName, kForeignCa, Usage::kClient));
  return pki;
}

absl::Status TestPki::Openssl(std::vector<std::string> args) const {
  args.insert(args.begin(), "openssl");
  absl::StatusOr<CommandResult> result = RunCommand({.argv = args});
  if (!result.ok()) return result.status();
  if (!result->status.ok()) {
    return absl::InternalError(
        absl::StrCat(absl::StrJoin(args, " "), ": ", result->status.ToString(), ": ", result->err));
  }
  return absl::OkStatus();
}

absl::Status TestPki::MakeCa(const std::string& name, const std::string& common_name) {
  return Openssl({"req", "-x509", "-config", File("openssl.cnf"), "-extensions", "ca", "-days", "2",
                  "-subj", "/CN=" + common_name, "-out", Cert(name), "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", Key(name)});
}

absl::Status TestPki::MakeCertificate(const std::string& name, const std::string& common_name,
                                      const std::string& ca, Usage usage) {
  const std::string request = File(name + ".csr");
  MESH_RETURN_IF_ERROR(Openssl({"req", "-new", "-config", File("openssl.cnf"), "-subj",
                                "/CN=" + common_name, "-out", request, "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", Key(name)}));
  return Openssl({"x509", "-req", "-in", request, "-CA", Cert(ca), "-CAkey", Key(ca), "-set_serial",
                  std::to_string(++serial_), "-days", "2", "-extfile", File("openssl.cnf"),
                  "-extensions", usage == Usage::kServer ? "server" : "client", "-out",
                  Cert(name)});
}

}  // namespace mesh::testing
