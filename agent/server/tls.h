#pragma once

// Mutual TLS for meshd's optional TCP listener (Config.tls): the server presents its
// certificate and accepts only clients whose certificate a CA in client_ca signs. The unix
// socket needs none of this (it checks peer credentials, unix_listener.h).
//
// Both functions read and check the PEM files up front, because gRPC 1.51 takes bad PEM
// without complaint and fails only later (the server does not start, or every handshake
// fails) with a log line that names no file. Each error names the file and what is wrong:
//   load tls.key: read "/etc/mesh/tls/key.pem": No such file or directory (ENOENT)
//   tls.cert "/etc/mesh/tls/cert.pem" holds no PEM certificate (-----BEGIN CERTIFICATE-----)
//   tls.key "/etc/mesh/tls/key.pem" does not belong to the certificate in tls.cert "..."
// Codes: InvalidArgument for an unset path or content that is not what it should be;
// NotFound / PermissionDenied when a file cannot be read. Encrypted keys are refused (meshd
// runs unattended; nothing may prompt for a passphrase).

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/config/config.h"

namespace mesh::agent {

// Server credentials from tls.cert_file, tls.key_file and tls.client_ca_file (tls.listen is
// not used), requiring and verifying a client certificate
// (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MtlsServerCredentials(
    const TlsConfig& tls);

// Client credentials for meshctl and tests: trusts the server certificates `ca_file` signs and
// presents the client certificate `cert_file` with its key `key_file`. The server's name is
// checked against the target's host (an IP address needs an IP subjectAltName).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MtlsChannelCredentials(
    const std::string& ca_file, const std::string& cert_file, const std::string& key_file);

}  // namespace mesh::agent
