#include "cli/client.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/atomic_file.h"

namespace mesh::cli {

absl::StatusOr<Endpoint> ResolveHost(const HostOptions& options) {
  std::string host = options.host;
  if (host.empty()) {
    const char* env = std::getenv("MESH_HOST");
    host = env != nullptr && *env != '\0' ? env : kDefaultHost;
  }
  Endpoint endpoint{.shown = host};
  absl::string_view rest = host;
  if (absl::ConsumePrefix(&rest, "unix://") || absl::StartsWith(rest, "/")) {
    if (!absl::StartsWith(rest, "/")) {
      return absl::InvalidArgumentError(
          absl::StrCat("--host ", host, ": a unix socket needs an absolute path (unix:///path)"));
    }
    endpoint.target = absl::StrCat("unix:", rest);
    return endpoint;
  }
  if (absl::ConsumePrefix(&rest, "tcp://")) {
    if (rest.empty() || rest.find(':') == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--host ", host, ": tcp:// needs host:port (tcp://meshd.example:7443)"));
    }
    endpoint.target = std::string(rest);
    endpoint.tls = true;
    return endpoint;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--host ", host, ": use unix:///path/to/meshd.sock or tcp://host:port (with --tls-*)"));
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const HostOptions& options) {
  absl::StatusOr<Endpoint> endpoint = ResolveHost(options);
  if (!endpoint.ok()) return endpoint.status();
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (endpoint->tls) {
    if (options.tls_cert.empty() || options.tls_key.empty() || options.tls_ca.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--host ", endpoint->shown,
          ": meshd's TCP listener takes mutual TLS; give --tls-cert, --tls-key and --tls-ca"));
    }
    grpc::SslCredentialsOptions ssl;
    for (auto [flag, path, out] : {std::tuple{"--tls-cert", &options.tls_cert, &ssl.pem_cert_chain},
                                   std::tuple{"--tls-key", &options.tls_key, &ssl.pem_private_key},
                                   std::tuple{"--tls-ca", &options.tls_ca, &ssl.pem_root_certs}}) {
      absl::StatusOr<std::string> pem = ReadFile(*path);
      if (!pem.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(flag, ": ", pem.status().message()));
      }
      *out = *std::move(pem);
    }
    credentials = grpc::SslCredentials(ssl);
  } else if (!options.tls_cert.empty() || !options.tls_key.empty() || !options.tls_ca.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert, --tls-key and --tls-ca are for tcp:// hosts; a unix socket checks the "
        "caller's uid instead");
  }
  auto client = std::unique_ptr<Client>(new Client(*std::move(endpoint)));
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(64 << 20);
  client->channel_ = grpc::CreateCustomChannel(client->endpoint_.target, credentials, arguments);
  client->containers_ = v1::ContainerService::NewStub(client->channel_);
  client->networks_ = v1::NetworkService::NewStub(client->channel_);
  client->groups_ = v1::GroupService::NewStub(client->channel_);
  client->images_ = v1::ImageService::NewStub(client->channel_);
  client->system_ = v1::SystemService::NewStub(client->channel_);
  return client;
}

std::unique_ptr<grpc::ClientContext> Client::Context(absl::Duration timeout) const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (timeout != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
  return context;
}

std::string Client::Describe(const grpc::Status& status) const {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    std::string hint = endpoint_.tls
                           ? "is meshd listening there with TLS, and do its CA and yours match?"
                           : "is meshd running (systemctl status meshd), and may you use its "
                             "socket (root or group mesh)?";
    return absl::StrCat("cannot reach meshd at ", endpoint_.shown, ": ", status.error_message(),
                        "; ", hint);
  }
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::StrCat("meshd at ", endpoint_.shown, " did not answer in time (",
                        status.error_message(), ")");
  }
  return status.error_message();
}

}  // namespace mesh::cli
