#include "agent/server/tls.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/atomic_file.h"
#include "base/child_process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mesh/v1/system.grpc.pb.h"
#include "tests/support/scoped_temp_dir.h"

namespace mesh::agent {
namespace {

using ::testing::HasSubstr;

// Extensions for the throwaway PKI: a CA, a server certificate for 127.0.0.1 and client
// certificates.
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

// Answers Version with the common name of the client's certificate, so a test sees which
// identity the server verified.
class EchoIdentityService final : public mesh::v1::SystemService::CallbackService {
  grpc::ServerUnaryReactor* Version(grpc::CallbackServerContext* context,
                                    const mesh::v1::VersionRequest* /*request*/,
                                    mesh::v1::VersionResponse* response) override {
    for (const grpc::string_ref& name :
         context->auth_context()->FindPropertyValues("x509_common_name")) {
      response->set_version(std::string(name.data(), name.size()));
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

class TlsTest : public ::testing::Test {
 protected:
  // One PKI for the whole suite: key generation is the slow part.
  static void SetUpTestSuite() {
    dir_ = new testing::ScopedTempDir("/tmp/mesh-tls-test-");
    ASSERT_FALSE(dir_->path().empty());
    ASSERT_TRUE(WriteFileAtomically(File("openssl.cnf"), kOpensslConfig).ok());
    MakeCa("ca", "mesh-test-ca");
    MakeCertificate("server", "localhost", "ca", "server");
    MakeCertificate("client", "mesh-test-client", "ca", "client");
    MakeCa("foreign-ca", "foreign-ca");
    MakeCertificate("foreign-client", "foreign-client", "foreign-ca", "client");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static std::string File(const std::string& name) { return dir_->path() + "/" + name; }

  static void Openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    absl::StatusOr<CommandResult> result = RunCommand({.argv = args});
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_TRUE(result->status.ok()) << absl::StrJoin(args, " ") << ": " << result->err;
  }

  static std::vector<std::string> NewKey(const std::string& name) {
    return {"-newkey", "ec",      "-pkeyopt",         "ec_paramgen_curve:prime256v1",
            "-nodes",  "-keyout", File(name + ".key")};
  }

  static void MakeCa(const std::string& name, const std::string& common_name) {
    std::vector<std::string> args = {
        "req",   "-x509", "-config", File("openssl.cnf"),  "-extensions", "ca",
        "-days", "2",     "-subj",   "/CN=" + common_name, "-out",        File(name + ".pem")};
    std::vector<std::string> key = NewKey(name);
    args.insert(args.end(), key.begin(), key.end());
    Openssl(args);
  }

  static void MakeCertificate(const std::string& name, const std::string& common_name,
                              const std::string& ca, const std::string& extensions) {
    std::vector<std::string> request = {"req",     "-new",
                                        "-config", File("openssl.cnf"),
                                        "-subj",   "/CN=" + common_name,
                                        "-out",    File(name + ".csr")};
    std::vector<std::string> key = NewKey(name);
    request.insert(request.end(), key.begin(), key.end());
    Openssl(request);
    Openssl({"x509", "-req", "-in", File(name + ".csr"), "-CA", File(ca + ".pem"), "-CAkey",
             File(ca + ".key"), "-set_serial", std::to_string(++serial_), "-days", "2", "-extfile",
             File("openssl.cnf"), "-extensions", extensions, "-out", File(name + ".pem")});
  }

  static TlsConfig ServerTls() {
    return {.listen = "127.0.0.1:0",
            .cert_file = File("server.pem"),
            .key_file = File("server.key"),
            .client_ca_file = File("ca.pem")};
  }

  // Starts the echo service on 127.0.0.1 with an ephemeral port.
  void StartServer() {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        MtlsServerCredentials(ServerTls());
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *credentials, &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  // Calls Version with `credentials`; the client's common name as the server saw it.
  absl::StatusOr<std::string> Call(const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    auto stub = mesh::v1::SystemService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), credentials));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    mesh::v1::VersionResponse response;
    grpc::Status status = stub->Version(&context, mesh::v1::VersionRequest(), &response);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    return response.version();
  }

  // Calls with MtlsChannelCredentials made from the named files in the PKI.
  absl::StatusOr<std::string> CallAs(const std::string& ca, const std::string& client) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        MtlsChannelCredentials(File(ca + ".pem"), File(client + ".pem"), File(client + ".key"));
    if (!credentials.ok()) return credentials.status();
    return Call(*credentials);
  }

  static inline testing::ScopedTempDir* dir_ = nullptr;
  static inline int serial_ = 0;
  EchoIdentityService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(TlsTest, ClientSignedByTheCaIsServed) {
  StartServer();
  absl::StatusOr<std::string> identity = CallAs("ca", "client");
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(*identity, "mesh-test-client");
}

TEST_F(TlsTest, ClientWithoutCertificateIsRefused) {
  StartServer();
  absl::StatusOr<std::string> ca = ReadFile(File("ca.pem"));
  ASSERT_TRUE(ca.ok());
  absl::StatusOr<std::string> identity = Call(grpc::SslCredentials({.pem_root_certs = *ca}));
  EXPECT_EQ(identity.status().code(), absl::StatusCode::kUnavailable) << identity.status();
}

TEST_F(TlsTest, ClientFromAnotherCaIsRefused) {
  StartServer();
  absl::StatusOr<std::string> identity = CallAs("ca", "foreign-client");
  EXPECT_EQ(identity.status().code(), absl::StatusCode::kUnavailable) << identity.status();
}

TEST_F(TlsTest, ClientRefusesAServerItsCaDidNotSign) {
  StartServer();
  absl::StatusOr<std::string> identity = CallAs("foreign-ca", "client");
  EXPECT_EQ(identity.status().code(), absl::StatusCode::kUnavailable) << identity.status();
}

TEST_F(TlsTest, MissingFilesAreNamed) {
  TlsConfig tls = ServerTls();
  tls.key_file = File("missing.key");
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = MtlsServerCredentials(tls);
  EXPECT_EQ(credentials.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(credentials.status().message(),
              HasSubstr("load tls.key: read \"" + File("missing.key") + "\": No such file"));

  tls = ServerTls();
  tls.client_ca_file = "";
  EXPECT_EQ(MtlsServerCredentials(tls).status(),
            absl::InvalidArgumentError("tls.client_ca is not set"));

  EXPECT_EQ(
      MtlsChannelCredentials(File("ca.pem"), File("nope.pem"), File("client.key")).status().code(),
      absl::StatusCode::kNotFound);
}

TEST_F(TlsTest, ContentThatIsNotPemIsNamed) {
  ASSERT_TRUE(WriteFileAtomically(File("garbage.pem"), "not a certificate\n").ok());
  TlsConfig tls = ServerTls();
  tls.cert_file = File("garbage.pem");
  EXPECT_EQ(MtlsServerCredentials(tls).status(),
            absl::InvalidArgumentError(
                absl::StrCat("tls.cert \"", File("garbage.pem"),
                             "\" holds no PEM certificate (-----BEGIN CERTIFICATE-----)")));

  tls = ServerTls();
  tls.client_ca_file = File("server.key");  // a key where certificates belong
  EXPECT_THAT(MtlsServerCredentials(tls).status().message(),
              HasSubstr("tls.client_ca \"" + File("server.key") + "\" holds no PEM certificate"));

  tls = ServerTls();
  tls.key_file = File("server.pem");  // a certificate where the key belongs
  EXPECT_THAT(
      MtlsServerCredentials(tls).status().message(),
      HasSubstr("tls.key \"" + File("server.pem") + "\" holds no unencrypted PEM private key"));

  absl::StatusOr<std::string> server_pem = ReadFile(File("server.pem"));
  ASSERT_TRUE(server_pem.ok());
  std::string broken = *server_pem;
  broken.replace(broken.find('\n') + 10, 8, "!!!!!!!!");
  ASSERT_TRUE(WriteFileAtomically(File("broken.pem"), broken).ok());
  tls = ServerTls();
  tls.cert_file = File("broken.pem");
  EXPECT_THAT(
      MtlsServerCredentials(tls).status().message(),
      HasSubstr("tls.cert \"" + File("broken.pem") + "\" holds a certificate that does not parse"));
}

TEST_F(TlsTest, KeyMustBelongToTheCertificate) {
  TlsConfig tls = ServerTls();
  tls.key_file = File("client.key");
  EXPECT_EQ(MtlsServerCredentials(tls).status(),
            absl::InvalidArgumentError(absl::StrCat("tls.key \"", File("client.key"),
                                                    "\" does not belong to the certificate in "
                                                    "tls.cert \"",
                                                    File("server.pem"), "\"")));
  EXPECT_THAT(MtlsChannelCredentials(File("ca.pem"), File("client.pem"), File("server.key"))
                  .status()
                  .message(),
              HasSubstr("client key \"" + File("server.key") +
                        "\" does not belong to the certificate in "
                        "client certificate"));
}

TEST_F(TlsTest, EncryptedKeysAreRefusedWithoutPrompting) {
  Openssl({"pkey", "-in", File("server.key"), "-aes256", "-passout", "pass:secret", "-out",
           File("encrypted.key")});
  TlsConfig tls = ServerTls();
  tls.key_file = File("encrypted.key");
  absl::Status status = MtlsServerCredentials(tls).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("holds no unencrypted PEM private key"));
}

}  // namespace
}  // namespace mesh::agent
