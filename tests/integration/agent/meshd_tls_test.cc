// meshd's API over TCP with mutual TLS (TESTING.md item 21), end to end: the real binary in the
// sandbox with --tls-listen on 127.0.0.1 (the loopback of the sandbox's own network namespace,
// which Sandbox::Create brings up), driven with real gRPC clients holding certificates of a
// throwaway PKI. The unix socket serves alongside.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/server/tls.h"
#include "base/atomic_file.h"
#include "base/child_process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/container/cgroup_access.h"
#include "tests/support/meshd_fixture.h"
#include "tests/support/sandbox.h"
#include "tests/support/test_pki.h"

namespace mesh::testing {
namespace {

using ::testing::HasSubstr;

// meshd's start-up reconcile removes the cgroups under its parent that it has no record of,
// and cgroups are not namespaced: a parent of its own keeps this test away from the containers
// of any other meshd test running at the same time. No container is made here.
constexpr char kCgroupParent[] = "mesh-test-meshd-tls";
constexpr int kTlsPort = 7443;

std::string TlsTarget() { return absl::StrCat("127.0.0.1:", kTlsPort); }

// A client of meshd's TCP listener with the given credentials. The server's certificate is
// checked against 127.0.0.1 (its IP subjectAltName), as meshctl would.
struct TlsClient {
  explicit TlsClient(const std::shared_ptr<grpc::ChannelCredentials>& credentials)
      : channel(grpc::CreateChannel(TlsTarget(), credentials)),
        system(v1::SystemService::NewStub(channel)),
        networks(v1::NetworkService::NewStub(channel)) {}

  grpc::Status Version(v1::VersionResponse* response = nullptr) {
    v1::VersionResponse ignored;
    return system->Version(Ctx(absl::Seconds(10)).get(), v1::VersionRequest(),
                           response != nullptr ? response : &ignored);
  }

  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::SystemService::Stub> system;
  std::unique_ptr<v1::NetworkService::Stub> networks;
};

std::vector<std::string> NetworkNames(v1::NetworkService::Stub& stub, grpc::Status* status) {
  v1::ListNetworksResponse response;
  *status = stub.List(Ctx(absl::Seconds(10)).get(), v1::ListNetworksRequest(), &response);
  std::vector<std::string> names;
  for (const v1::Network& network : response.networks()) names.push_back(network.spec().name());
  return names;
}

class MeshdTlsTest : public SandboxTest {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    const std::string dir = absl::StrCat(Sandbox::kScratchDir, "/pki");
    ASSERT_EQ(mkdir(dir.c_str(), 0700), 0) << dir << ": " << std::strerror(errno);
    absl::StatusOr<TestPki> pki = TestPki::Create(dir);
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = std::make_unique<TestPki>(*std::move(pki));
  }
  void TearDown() override {
    if (HasFailure() && meshd_ != nullptr) std::cerr << "---- meshd log ----\n" << meshd_->Log();
    meshd_.reset();
    // The parent meshd may have made (cgroups outlive the sandbox).
    if (auto driver = runtime::HostCgroupDriver(kCgroupParent); driver.ok()) {
      (*driver)->RemoveParent().IgnoreError();  // FailedPrecondition only if not empty
    }
    SandboxTest::TearDown();
  }

  // meshd's flags besides those the fixture passes; `tls` are the --tls-* ones.
  static std::vector<std::string> ExtraArgs(const std::vector<std::string>& tls) {
    std::vector<std::string> args = {"--cgroup-parent", kCgroupParent};
    args.insert(args.end(), tls.begin(), tls.end());
    return args;
  }
  // All four --tls-* flags for the PKI's server certificate (or `cert` instead).
  std::vector<std::string> TlsFlags(std::string cert = "") const {
    if (cert.empty()) cert = pki_->Cert(TestPki::kServer);
    return {"--tls-listen",    TlsTarget(),
            "--tls-cert",      cert,
            "--tls-key",       pki_->Key(TestPki::kServer),
            "--tls-client-ca", pki_->Cert(TestPki::kCa)};
  }

  static MeshdOptions Options(const std::vector<std::string>& tls) {
    MeshdOptions options;
    options.meshd_path = MESHD_PATH;
    options.shim_path = MESH_SHIM_PATH;
    options.extra_args = ExtraArgs(tls);
    return options;
  }

  // Starts meshd with the TCP listener; it answers on the unix socket when this returns, and
  // the TCP listener is bound before the unix socket is made (agent/daemon.cc).
  void StartMeshd() {
    absl::StatusOr<std::unique_ptr<Meshd>> meshd = Meshd::Start(Options(TlsFlags()));
    ASSERT_TRUE(meshd.ok()) << meshd.status();
    meshd_ = *std::move(meshd);
  }

  // Runs meshd to its end with `tls` flags (it is expected to refuse to start).
  static absl::StatusOr<CommandResult> RunMeshd(const std::vector<std::string>& tls) {
    MeshdOptions options = Options(tls);
    std::vector<std::string> argv = {options.meshd_path, "--state-dir",   options.state_dir,
                                     "--run-dir",        options.run_dir, "--socket",
                                     options.socket,     "--shim",        options.shim_path};
    argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
    return RunCommand({.argv = argv, .env = std::vector<std::string>{"PATH=/usr/sbin:/usr/bin"}},
                      absl::Seconds(60));
  }

  // Credentials for a client trusting the CA `ca` and presenting `client`'s certificate.
  std::shared_ptr<grpc::ChannelCredentials> Mtls(const std::string& ca, const std::string& client) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        agent::MtlsChannelCredentials(pki_->Cert(ca), pki_->Cert(client), pki_->Key(client));
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    return credentials.value_or(nullptr);
  }

  // After a refused client: meshd still serves a client of its CA on TCP, and the unix socket.
  void ExpectStillServing() {
    TlsClient good(Mtls(TestPki::kCa, TestPki::kClient));
    grpc::Status status = good.Version();
    EXPECT_TRUE(status.ok()) << "TLS after a refused client: " << StatusText(status);
    v1::VersionResponse version;
    status = meshd_->system().Version(Ctx(absl::Seconds(10)).get(), v1::VersionRequest(), &version);
    EXPECT_TRUE(status.ok()) << "unix socket: " << StatusText(status);
  }

  // Nothing answers on the TCP port: a client meshd would accept cannot connect.
  void ExpectNoTlsListener() {
    grpc::Status status = TlsClient(Mtls(TestPki::kCa, TestPki::kClient)).Version();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << StatusText(status);
  }

  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<Meshd> meshd_;
};

TEST_F(MeshdTlsTest, ClientSignedByTheClientCaIsServedAndTheUnixSocketToo) {
  StartMeshd();
  TlsClient client(Mtls(TestPki::kCa, TestPki::kClient));

  v1::VersionResponse version;
  grpc::Status status = client.Version(&version);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_EQ(version.api_version(), "mesh.v1");
  EXPECT_FALSE(version.version().empty());

  std::vector<std::string> names = NetworkNames(*client.networks, &status);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_THAT(names, ::testing::IsEmpty());

  // A change made over TLS is the same daemon's state as the unix socket's.
  v1::CreateNetworkRequest create;
  create.mutable_spec()->set_name("over-tls");
  create.mutable_spec()->set_subnet("10.88.1.0/24");
  v1::Network network;
  status = client.networks->Create(Ctx().get(), create, &network);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_THAT(NetworkNames(*client.networks, &status), ::testing::ElementsAre("over-tls"));
  EXPECT_TRUE(status.ok()) << StatusText(status);
  EXPECT_THAT(NetworkNames(meshd_->networks(), &status), ::testing::ElementsAre("over-tls"));
  EXPECT_TRUE(status.ok()) << StatusText(status);

  v1::VersionResponse unix_version;
  status = meshd_->system().Version(Ctx().get(), v1::VersionRequest(), &unix_version);
  ASSERT_TRUE(status.ok()) << StatusText(status);
  EXPECT_EQ(unix_version.version(), version.version());

  v1::RemoveNetworkRequest remove;
  remove.set_name("over-tls");
  v1::RemoveNetworkResponse removed;
  status = client.networks->Remove(Ctx().get(), remove, &removed);
  EXPECT_TRUE(status.ok()) << StatusText(status);
}

TEST_F(MeshdTlsTest, MeshctlTalksToTheTcpListenerWithItsTlsFlags) {
  StartMeshd();
  const std::string host = absl::StrCat("tcp://", TlsTarget());
  auto meshctl = [&](std::vector<std::string> args, const std::string& client,
                     std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {MESHCTL_PATH};
    if (!client.empty()) {
      argv.insert(argv.end(), {"--tls-cert", pki_->Cert(client), "--tls-key", pki_->Key(client),
                               "--tls-ca", pki_->Cert(TestPki::kCa)});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    env.push_back("PATH=/usr/sbin:/usr/bin");
    absl::StatusOr<CommandResult> run = RunCommand({.argv = argv, .env = env}, absl::Seconds(30));
    EXPECT_TRUE(run.ok()) << run.status();
    return run.value_or(CommandResult{.status = {.code = -1}});
  };

  // --host, then MESH_HOST; the unix socket sees the same state.
  CommandResult created = meshctl(
      {"--host", host, "net", "create", "viatls", "--subnet", "10.88.3.0/24"}, TestPki::kClient);
  EXPECT_EQ(created.status.code, 0) << created.err;
  CommandResult listed = meshctl({"net", "ls", "-q"}, TestPki::kClient, {"MESH_HOST=" + host});
  EXPECT_EQ(listed.status.code, 0) << listed.err;
  EXPECT_EQ(listed.out, "viatls\n");
  grpc::Status status;
  EXPECT_THAT(NetworkNames(meshd_->networks(), &status), ::testing::ElementsAre("viatls"));

  // Without the TLS files: refused before connecting (usage). With a foreign CA's
  // certificate: the handshake fails, and the message says where meshctl tried.
  CommandResult bare = meshctl({"--host", host, "net", "ls"}, "");
  EXPECT_EQ(bare.status.code, 2) << bare.err;
  EXPECT_THAT(bare.err, HasSubstr("give --tls-cert, --tls-key and --tls-ca"));
  CommandResult foreign = meshctl({"--host", host, "net", "rm", "viatls"}, TestPki::kForeignClient);
  EXPECT_EQ(foreign.status.code, 1) << foreign.err;
  EXPECT_THAT(foreign.err, HasSubstr(TlsTarget()));
  EXPECT_THAT(NetworkNames(meshd_->networks(), &status), ::testing::ElementsAre("viatls"));

  CommandResult removed = meshctl({"--host", host, "net", "rm", "viatls"}, TestPki::kClient);
  EXPECT_EQ(removed.status.code, 0) << removed.err;
  EXPECT_THAT(NetworkNames(meshd_->networks(), &status), ::testing::IsEmpty());
}

TEST_F(MeshdTlsTest, ClientWithoutCertificateIsRefused) {
  StartMeshd();
  absl::StatusOr<std::string> ca = ReadFile(pki_->Cert(TestPki::kCa));
  ASSERT_TRUE(ca.ok()) << ca.status();
  TlsClient anonymous(grpc::SslCredentials({.pem_root_certs = *ca}));
  grpc::Status status = anonymous.Version();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << StatusText(status);
  ExpectStillServing();
}

TEST_F(MeshdTlsTest, ClientOfAForeignCaIsRefusedAndChangesNothing) {
  StartMeshd();
  TlsClient foreign(Mtls(TestPki::kCa, TestPki::kForeignClient));
  grpc::Status status = foreign.Version();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << StatusText(status);

  v1::CreateNetworkRequest create;
  create.mutable_spec()->set_name("intruder");
  create.mutable_spec()->set_subnet("10.88.2.0/24");
  v1::Network network;
  status = foreign.networks->Create(Ctx(absl::Seconds(10)).get(), create, &network);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << StatusText(status);
  EXPECT_THAT(NetworkNames(meshd_->networks(), &status), ::testing::IsEmpty());
  EXPECT_TRUE(status.ok()) << StatusText(status);
  ExpectStillServing();
}

TEST_F(MeshdTlsTest, PlaintextClientIsRefused) {
  StartMeshd();
  TlsClient plaintext(grpc::InsecureChannelCredentials());
  grpc::Status status = plaintext.Version();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << StatusText(status);
  ExpectStillServing();
}

TEST_F(MeshdTlsTest, ClientRefusesAServerItsCaDidNotSign) {
  StartMeshd();
  // meshd would accept this client's certificate; the client does not trust meshd's.
  TlsClient wary(Mtls(TestPki::kForeignCa, TestPki::kClient));
  grpc::Status status = wary.Version();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << StatusText(status);
  ExpectStillServing();
}

TEST_F(MeshdTlsTest, RefusesToStartWithoutTheCertificateFiles) {
  absl::StatusOr<CommandResult> run = RunMeshd({"--tls-listen", TlsTarget()});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->status.code, 2) << run->status.ToString() << ": " << run->err;
  EXPECT_THAT(run->err, HasSubstr(absl::StrCat("tls.listen: \"", TlsTarget(),
                                               "\" needs tls.cert, tls.key and tls.client_ca")));

  run = RunMeshd({"--tls-listen", TlsTarget(), "--tls-cert", pki_->Cert(TestPki::kServer)});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->status.code, 2) << run->status.ToString() << ": " << run->err;
  EXPECT_THAT(run->err, HasSubstr("tls: cert, key and client_ca go together; missing: key, "
                                  "client_ca"));

  // Refused by the configuration check, before meshd made anything.
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(Sandbox::kStateDir, ec)) << ec.message();
  EXPECT_FALSE(std::filesystem::exists(MeshdOptions().socket, ec));
  ExpectNoTlsListener();
}

TEST_F(MeshdTlsTest, RefusesToStartWhenACertificateFileIsMissing) {
  const std::string missing = pki_->File("missing.pem");
  absl::StatusOr<CommandResult> run = RunMeshd(TlsFlags(missing));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->status.code, 1) << run->status.ToString() << ": " << run->err;
  EXPECT_THAT(run->err, HasSubstr(absl::StrCat("meshd: load tls.cert: read \"", missing,
                                               "\": No such file")));
  std::error_code ec;
  EXPECT_FALSE(std::filesystem::exists(MeshdOptions().socket, ec));
  ExpectNoTlsListener();
}

}  // namespace
}  // namespace mesh::testing
