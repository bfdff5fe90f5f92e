#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/image/digest.h"
#include "runtime/image/reference.h"

namespace mesh::runtime::image {
namespace {

using ::testing::HasSubstr;

TEST(DigestTest, ParsesSha256) {
  std::string text = "sha256:" + std::string(64, 'a');
  absl::StatusOr<Digest> d = ParseDigest(text);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->hex, std::string(64, 'a'));
  EXPECT_EQ(d->ToString(), text);
}

TEST(DigestTest, RejectsMalformedAndOtherAlgorithms) {
  for (const char* bad :
       {"", "sha256:", "sha256:abc", "abcd", "sha256:" /* short */,
        "SHA256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    EXPECT_EQ(ParseDigest(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ParseDigest("sha256:" + std::string(64, 'A')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseDigest("sha256:" + std::string(65, 'a')).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status s = ParseDigest("sha512:" + std::string(128, 'a')).status();
  EXPECT_THAT(s.message(), HasSubstr("unsupported algorithm"));
}

TEST(DigestTest, Sha256KnownAnswers) {
  EXPECT_EQ(Sha256Of("").hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Of("abc").hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(h.Finish().hex, Sha256Of("abc").hex);
}

TEST(ReferenceTest, DefaultsTagToLatest) {
  absl::StatusOr<Reference> r = ParseReference("busybox");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->name, "busybox");
  EXPECT_EQ(r->tag, "latest");
  EXPECT_EQ(r->ToString(), "busybox:latest");
}

TEST(ReferenceTest, AcceptsDockerGrammar) {
  struct Case {
    const char* text;
    const char* name;
    const char* tag;
  };
  for (const Case& c : std::vector<Case>{
           {"app:1.2", "app", "1.2"},
           {"team/app:v1_rc-2", "team/app", "v1_rc-2"},
           {"localhost:5000/app", "localhost:5000/app", "latest"},
           {"registry.example.com:443/a/b/c:x", "registry.example.com:443/a/b/c", "x"},
           {"docker.io/library/busybox:latest", "docker.io/library/busybox", "latest"},
           {"a__b.c-d---e", "a__b.c-d---e", "latest"},
           {"Registry.Local/app:Tag", "Registry.Local/app", "Tag"},
       }) {
    absl::StatusOr<Reference> r = ParseReference(c.text);
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.status();
    EXPECT_EQ(r->name, c.name) << c.text;
    EXPECT_EQ(r->tag, c.tag) << c.text;
  }
}

TEST(ReferenceTest, RejectsInvalid) {
  for (const char* bad :
       {"", ":tag", "App", "app:", "app:.x", "app:-x", "a//b", "/app", "app/", "a___b", "a_-b",
        "-app", "app-", "app@sha256:abcd", "app:tag:x", "ap p", "app\n", "../etc", "a/../b"}) {
    absl::StatusOr<Reference> r = ParseReference(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << "\"" << bad << "\"";
  }
  EXPECT_THAT(ParseReference("app@sha256:00").status().message(), HasSubstr("digest"));
  EXPECT_FALSE(ParseReference(std::string(256, 'a')).ok());
  EXPECT_TRUE(ParseReference(std::string(255, 'a')).ok());
  EXPECT_FALSE(ParseReference("app:" + std::string(129, 't')).ok());
  EXPECT_TRUE(ParseReference("app:" + std::string(128, 't')).ok());
}

}  // namespace
}  // namespace mesh::runtime::image
