#include "agent/server/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace mesh::agent {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// One PEM file: what it is called in messages ("tls.cert"), its path and, once read, its text.
struct PemFile {
  absl::string_view name;
  std::string path;
  std::string pem;
};

std::string Describe(const PemFile& file) {
  return absl::StrCat(file.name, " \"", file.path, "\"");
}

// OpenSSL keeps errors in a per-thread queue that gRPC's own TLS code also reads, so every
// check empties it before returning.
std::string TakeOpenSslReason() {
  const char* reason = ERR_reason_error_string(ERR_peek_last_error());
  ERR_clear_error();
  return reason == nullptr ? std::string() : absl::StrCat(" (", reason, ")");
}

BioPtr MemoryBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

absl::Status Read(PemFile& file) {
  if (file.path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(file.name, " is not set"));
  }
  absl::StatusOr<std::string> text = ReadFile(file.path);
  if (!text.ok()) return Annotate(text.status(), absl::StrCat("load ", file.name));
  file.pem = *std::move(text);
  return absl::OkStatus();
}

// Every certificate in `file` (a chain or a CA bundle); the first is the leaf. At least one.
absl::StatusOr<X509Ptr> CheckCertificates(const PemFile& file) {
  BioPtr bio = MemoryBio(file.pem);
  X509Ptr first;
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) break;
    if (first == nullptr) first = std::move(cert);
  }
  // The loop ends with "no start line" at the end of the input; anything else is a block
  // that does not parse.
  unsigned long last = ERR_peek_last_error();
  bool clean_end = ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
  if (!clean_end) {
    return absl::InvalidArgumentError(absl::StrCat(
        Describe(file), " holds a certificate that does not parse", TakeOpenSslReason()));
  }
  ERR_clear_error();
  if (first == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(Describe(file), " holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
  }
  return first;
}

// No passphrase: an encrypted key fails here instead of prompting on the terminal.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return -1; }

absl::Status CheckKey(const PemFile& key, const PemFile& cert_file, X509* cert) {
  BioPtr bio = MemoryBio(key.pem);
  PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (pkey == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(Describe(key), " holds no unencrypted PEM private key", TakeOpenSslReason()));
  }
  if (X509_check_private_key(cert, pkey.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        Describe(key), " does not belong to the certificate in ", Describe(cert_file)));
  }
  return absl::OkStatus();
}

struct Pems {
  std::string ca;
  std::string cert;
  std::string key;
};

// Reads and checks the three files, in the order a reader fixes them: CA, certificate, key.
absl::StatusOr<Pems> LoadPems(PemFile ca, PemFile cert, PemFile key) {
  MESH_RETURN_IF_ERROR(Read(ca));
  MESH_RETURN_IF_ERROR(CheckCertificates(ca).status());
  MESH_RETURN_IF_ERROR(Read(cert));
  MESH_ASSIGN_OR_RETURN(X509Ptr leaf, CheckCertificates(cert));
  MESH_RETURN_IF_ERROR(Read(key));
  MESH_RETURN_IF_ERROR(CheckKey(key, cert, leaf.get()));
  return Pems{.ca = std::move(ca.pem), .cert = std::move(cert.pem), .key = std::move(key.pem)};
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MtlsServerCredentials(
    const TlsConfig& tls) {
  MESH_ASSIGN_OR_RETURN(Pems pems, LoadPems({.name = "tls.client_ca", .path = tls.client_ca_file},
                                            {.name = "tls.cert", .path = tls.cert_file},
                                            {.name = "tls.key", .path = tls.key_file}));
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = std::move(pems.ca);
  options.pem_key_cert_pairs.push_back(
      {.private_key = std::move(pems.key), .cert_chain = std::move(pems.cert)});
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MtlsChannelCredentials(
    const std::string& ca_file, const std::string& cert_file, const std::string& key_file) {
  MESH_ASSIGN_OR_RETURN(Pems pems, LoadPems({.name = "CA file", .path = ca_file},
                                            {.name = "client certificate", .path = cert_file},
                                            {.name = "client key", .path = key_file}));
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = std::move(pems.ca);
  options.pem_cert_chain = std::move(pems.cert);
  options.pem_private_key = std::move(pems.key);
  return grpc::SslCredentials(options);
}

}  // namespace mesh::agent
