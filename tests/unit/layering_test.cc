#include "tests/support/layering.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mesh::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(LayeringTest, TheRepositoryKeepsItsLayers) {
  EXPECT_THAT(FindLayerViolations(MESH_SOURCE_DIR), IsEmpty());
}

class SyntheticTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mesh-layering-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void Write(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << text;
  }
  std::filesystem::path root_;
};

TEST_F(SyntheticTreeTest, FlagsEachUpwardOrSidewaysInclude) {
  Write("base/ok.h", "#include \"base/unique_fd.h\"\n#include <vector>\n");
  Write("base/up.cc", "#include \"netplane/network/names.h\"\n");
  Write("netplane/x/y.cc", "// a comment\n  #  include \"runtime/spec/spec.h\"\n");
  Write("runtime/z.h", "#include \"agent/store/store.h\"\n#include \"base/log.h\"\n");
  Write("runtime/api.h", "#include \"mesh/v1/system.pb.h\"\n");
  Write("cli/main.cc", "#include \"mesh/v1/system.grpc.pb.h\"\n#include \"agent/api/version.h\"\n");
  Write("agent/ok.cc",
        "#include \"netplane/network/names.h\"\n#include \"runtime/cgroups/layout.h\"\n"
        "#include \"mesh/v1/system.pb.h\"\n");

  std::vector<std::string> v = FindLayerViolations(root_);
  ASSERT_THAT(v, SizeIs(5)) << ::testing::PrintToString(v);
  std::sort(v.begin(), v.end());
  EXPECT_THAT(v[0], HasSubstr("base/up.cc:1: base may not include \"netplane/network/names.h\""));
  EXPECT_THAT(v[1], HasSubstr("cli/main.cc:2: cli may not include \"agent/api/version.h\""));
  EXPECT_THAT(v[1], HasSubstr("gRPC API only"));
  EXPECT_THAT(v[2],
              HasSubstr("netplane/x/y.cc:2: netplane may not include \"runtime/spec/spec.h\""));
  EXPECT_THAT(v[3], HasSubstr("runtime/api.h:1: runtime may not include \"mesh/v1/system.pb.h\""));
  EXPECT_THAT(v[4], HasSubstr("runtime/z.h:1: runtime may not include \"agent/store/store.h\""));
}

TEST_F(SyntheticTreeTest, CleanTreeHasNoViolations) {
  Write("netplane/a.cc", "#include \"base/log.h\"\n#include \"netplane/a.h\"\n");
  EXPECT_THAT(FindLayerViolations(root_), ElementsAre());
}

}  // namespace
}  // namespace mesh::testing
