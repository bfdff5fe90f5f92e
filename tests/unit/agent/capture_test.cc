// The capture's tcpdump command line and its checks (RunCapture itself joins a network
// namespace, so it is tested as root: MeshdTest.CaptureStreamsAPcapOfTheContainersInterface).
#include "agent/capture/capture.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mesh::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CaptureCommandTest, NoLookupsPacketBufferedToStdoutWithTheLimitsAndTheFilterLast) {
  CaptureOptions o;
  o.interface = "eth1";
  EXPECT_THAT(CaptureCommand(o), ElementsAre("tcpdump", "-n", "-U", "-i", "eth1", "-w", "-"));
  o.max_packets = 5;
  o.snap_length = 96;
  o.filter = "tcp port 80";
  EXPECT_THAT(CaptureCommand(o), ElementsAre("tcpdump", "-n", "-U", "-i", "eth1", "-w", "-", "-c",
                                             "5", "-s", "96", "--", "tcp port 80"));
}

TEST(CaptureCommandTest, InterfaceAndFilterAreChecked) {
  CaptureOptions o;
  o.interface = "eth0";
  EXPECT_TRUE(ValidateCapture(o).ok());
  o.interface = "any";
  EXPECT_TRUE(ValidateCapture(o).ok());
  for (const char* bad : {"", "-w", "a/b", "a b", "sixteen-bytes-xx"}) {
    o.interface = bad;
    absl::Status s = ValidateCapture(o);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("is not an interface name")) << bad;
  }
  o.interface = "eth0";
  o.filter = std::string(1025, 'x');
  EXPECT_THAT(ValidateCapture(o).message(), HasSubstr("filter: must be at most 1024 bytes"));
  o.filter = std::string("icmp\0x", 6);
  EXPECT_EQ(ValidateCapture(o).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mesh::agent
