#include "agent/server/tls.h"

#include <grpc/grpc.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/channel_arguments.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mesh/v1/system.grpc.pb.h"
#include "tests/support/scoped_temp_dir.h"
#include "tests/support/test_pki.h"

namespace mesh::agent {
namespace {

using ::mesh::testing::TestPki;
using ::testing::HasSubstr;

// Answers Version with the common name of the client's certificate, so a test sees which
// identity the server verified, and counts the calls that got this far.
class EchoIdentityService final : public mesh::v1::SystemService::CallbackService {
 public:
  int calls() const { return calls_.load(); }

 private:
  grpc::ServerUnaryReactor* Version(grpc::CallbackServerContext* context,
                                    const mesh::v1::VersionRequest* /*request*/,
                                    mesh::v1::VersionResponse* response) override {
    ++calls_;
    for (const grpc::string_ref& name :
         context->auth_context()->FindPropertyValues("x509_common_name")) {
      response->set_version(std::string(name.data(), name.size()));
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  std::atomic<int> calls_{0};
};

// The servers listen on a unix socket in the suite's temporary directory: a unit test touches
// no network, not even the host's loopback. TLS runs over the unix socket as over TCP.
class TlsTest : public ::testing::Test {
 protected:
  // One PKI for the whole suite: key generation is the slow part.
  static void SetUpTestSuite() {
    dir_ = new testing::ScopedTempDir("/tmp/mesh-tls-test-");
    ASSERT_FALSE(dir_->path().empty());
    absl::StatusOr<TestPki> pki = TestPki::Create(dir_->path());
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = new TestPki(*std::move(pki));
  }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }

  static std::string File(const std::string& name) { return pki_->File(name); }
  static std::string SocketPath() { return File("tls.sock"); }

  static TlsConfig ServerTls() {
    return {.listen = "127.0.0.1:0",  // not used by MtlsServerCredentials
            .cert_file = pki_->Cert(TestPki::kServer),
            .key_file = pki_->Key(TestPki::kServer),
            .client_ca_file = pki_->Cert(TestPki::kCa)};
  }

  // Starts the echo service on the unix socket with the server credentials under test.
  void StartServer() {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        MtlsServerCredentials(ServerTls());
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    unlink(SocketPath().c_str());  // a previous test's server
    grpc::ServerBuilder builder;
    int bound = 0;
    builder.AddListeningPort(absl::StrCat("unix:", SocketPath()), *credentials, &bound);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(bound, 0) << "no listener on unix:" << SocketPath();
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    unlink(SocketPath().c_str());
  }

  // Calls Version with `credentials`; the client's common name as the server saw it. The
  // server's certificate is checked against "localhost" (its DNS subjectAltName), since a unix
  // socket target has no host name to check.
  absl::StatusOr<std::string> Call(const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    grpc::ChannelArguments args;
    args.SetString(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, TestPki::kServerName);
    auto stub = mesh::v1::SystemService::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("unix:", SocketPath()), credentials, args));
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

  // Calls with MtlsChannelCredentials trusting the CA `ca` and presenting `client`'s
  // certificate and key, all from the PKI.
  absl::StatusOr<std::string> CallAs(const std::string& ca, const std::string& client) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        MtlsChannelCredentials(pki_->Cert(ca), pki_->Cert(client), pki_->Key(client));
    if (!credentials.ok()) return credentials.status();
    return Call(*credentials);
  }

  // After a refused call: nothing reached the service, and the same server still serves a
  // client signed by its CA (so the refusal was the handshake's, not a dead server's).
  void ExpectRefusedByTlsOnly() {
    EXPECT_EQ(service_.calls(), 0);
    absl::StatusOr<std::string> identity = CallAs(TestPki::kCa, TestPki::kClient);
    ASSERT_TRUE(identity.ok()) << identity.status();
    EXPECT_EQ(*identity, TestPki::kClientCommonName);
    EXPECT_EQ(service_.calls(), 1);
  }

  static inline testing::ScopedTempDir* dir_ = nullptr;
  static inline TestPki* pki_ = nullptr;
  EchoIdentityService service_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(TlsTest, ClientSignedByTheCaIsServed) {
  StartServer();
  absl::StatusOr<std::string> identity = CallAs(TestPki::kCa, TestPki::kClient);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(*identity, TestPki::kClientCommonName);
  EXPECT_EQ(service_.calls(), 1);
}

TEST_F(TlsTest, ClientWithoutCertificateIsRefused) {
  StartServer();
  absl::StatusOr<std::string> ca = ReadFile(pki_->Cert(TestPki::kCa));
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<std::string> identity = Call(grpc::SslCredentials({.pem_root_certs = *ca}));
  EXPECT_EQ(identity.status().code(), absl::StatusCode::kUnavailable) << identity.status();
  ExpectRefusedByTlsOnly();
}

TEST_F(TlsTest, ClientFromAnotherCaIsRefused) {
  StartServer();
  absl::StatusOr<std::string> identity = CallAs(TestPki::kCa, TestPki::kForeignClient);
  EXPECT_EQ(identity.status().code(), absl::StatusCode::kUnavailable) << identity.status();
  ExpectRefusedByTlsOnly();
}

TEST_F(TlsTest, ClientRefusesAServerItsCaDidNotSign) {
  StartServer();
  absl::StatusOr<std::string> identity = CallAs(TestPki::kForeignCa, TestPki::kClient);
  EXPECT_EQ(identity.status().code(), absl::StatusCode::kUnavailable) << identity.status();
  ExpectRefusedByTlsOnly();
}

TEST_F(TlsTest, PlaintextClientIsRefused) {
  StartServer();
  absl::StatusOr<std::string> identity = Call(grpc::InsecureChannelCredentials());
  EXPECT_EQ(identity.status().code(), absl::StatusCode::kUnavailable) << identity.status();
  ExpectRefusedByTlsOnly();
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

  EXPECT_EQ(MtlsChannelCredentials(pki_->Cert(TestPki::kCa), File("nope.pem"),
                                   pki_->Key(TestPki::kClient))
                .status()
                .code(),
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

  const std::string server_key = pki_->Key(TestPki::kServer);
  const std::string server_pem = pki_->Cert(TestPki::kServer);
  tls = ServerTls();
  tls.client_ca_file = server_key;  // a key where certificates belong
  EXPECT_THAT(MtlsServerCredentials(tls).status().message(),
              HasSubstr("tls.client_ca \"" + server_key + "\" holds no PEM certificate"));

  tls = ServerTls();
  tls.key_file = server_pem;  // a certificate where the key belongs
  EXPECT_THAT(MtlsServerCredentials(tls).status().message(),
              HasSubstr("tls.key \"" + server_pem + "\" holds no unencrypted PEM private key"));

  absl::StatusOr<std::string> pem = ReadFile(server_pem);
  ASSERT_TRUE(pem.ok()) << pem.status();
  std::string broken = *pem;
  broken.replace(broken.find('\n') + 10, 8, "!!!!!!!!");
  ASSERT_TRUE(WriteFileAtomically(File("broken.pem"), broken).ok());
  tls = ServerTls();
  tls.cert_file = File("broken.pem");
  EXPECT_THAT(
      MtlsServerCredentials(tls).status().message(),
      HasSubstr("tls.cert \"" + File("broken.pem") + "\" holds a certificate that does not parse"));
}

TEST_F(TlsTest, KeyMustBelongToTheCertificate) {
  const std::string client_key = pki_->Key(TestPki::kClient);
  TlsConfig tls = ServerTls();
  tls.key_file = client_key;
  EXPECT_EQ(MtlsServerCredentials(tls).status(),
            absl::InvalidArgumentError(absl::StrCat("tls.key \"", client_key,
                                                    "\" does not belong to the certificate in "
                                                    "tls.cert \"",
                                                    pki_->Cert(TestPki::kServer), "\"")));
  const std::string server_key = pki_->Key(TestPki::kServer);
  EXPECT_THAT(
      MtlsChannelCredentials(pki_->Cert(TestPki::kCa), pki_->Cert(TestPki::kClient), server_key)
          .status()
          .message(),
      HasSubstr("client key \"" + server_key +
                "\" does not belong to the certificate in "
                "client certificate"));
}

TEST_F(TlsTest, EncryptedKeysAreRefusedWithoutPrompting) {
  absl::Status encrypted =
      pki_->Openssl({"pkey", "-in", pki_->Key(TestPki::kServer), "-aes256", "-passout",
                     "pass:secret", "-out", File("encrypted.key")});
  ASSERT_TRUE(encrypted.ok()) << encrypted;
  TlsConfig tls = ServerTls();
  tls.key_file = File("encrypted.key");
  absl::Status status = MtlsServerCredentials(tls).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("holds no unencrypted PEM private key"));
}

}  // namespace
}  // namespace mesh::agent
