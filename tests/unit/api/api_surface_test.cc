// The public API's shape (proto/mesh/v1), as other services depend on it: which services and
// methods exist, which stream, and the enum conventions. A change here is an API change.
#include <cctype>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "mesh/v1/containers.pb.h"
#include "mesh/v1/groups.pb.h"
#include "mesh/v1/images.pb.h"
#include "mesh/v1/networks.pb.h"
#include "mesh/v1/system.pb.h"

namespace mesh {
namespace {

using ::google::protobuf::DescriptorPool;
using ::google::protobuf::FileDescriptor;
using ::google::protobuf::MethodDescriptor;
using ::google::protobuf::ServiceDescriptor;

enum class Streaming { kUnary, kServer, kClient, kBidi };

Streaming KindOf(const MethodDescriptor* m) {
  if (m->client_streaming() && m->server_streaming()) return Streaming::kBidi;
  if (m->client_streaming()) return Streaming::kClient;
  if (m->server_streaming()) return Streaming::kServer;
  return Streaming::kUnary;
}

std::map<std::string, Streaming> MethodsOf(const std::string& service) {
  const ServiceDescriptor* s = DescriptorPool::generated_pool()->FindServiceByName(service);
  EXPECT_NE(s, nullptr) << service;
  std::map<std::string, Streaming> out;
  for (int i = 0; s != nullptr && i < s->method_count(); ++i) {
    out[s->method(i)->name()] = KindOf(s->method(i));
  }
  return out;
}

TEST(ApiSurfaceTest, ServicesMethodsAndStreaming) {
  // Referencing the generated files links their descriptors into the pool.
  (void)v1::Container::descriptor();
  (void)v1::Network::descriptor();
  (void)v1::Group::descriptor();
  (void)v1::Image::descriptor();
  (void)v1::Event::descriptor();
  using S = Streaming;
  EXPECT_EQ(MethodsOf("mesh.v1.ContainerService"),
            (std::map<std::string, S>{{"Create", S::kUnary},
                                      {"Start", S::kUnary},
                                      {"Stop", S::kUnary},
                                      {"Kill", S::kUnary},
                                      {"Remove", S::kUnary},
                                      {"Get", S::kUnary},
                                      {"List", S::kUnary},
                                      {"Wait", S::kUnary},
                                      {"Logs", S::kServer},
                                      {"Exec", S::kBidi},
                                      {"Stats", S::kUnary},
                                      {"Capture", S::kServer}}));
  EXPECT_EQ(MethodsOf("mesh.v1.NetworkService"),
            (std::map<std::string, S>{{"Create", S::kUnary},
                                      {"Remove", S::kUnary},
                                      {"Get", S::kUnary},
                                      {"List", S::kUnary},
                                      {"Connect", S::kUnary},
                                      {"Disconnect", S::kUnary},
                                      {"Check", S::kUnary},
                                      {"CheckGroup", S::kUnary}}));
  EXPECT_EQ(
      MethodsOf("mesh.v1.GroupService"),
      (std::map<std::string, S>{
          {"Apply", S::kServer}, {"Get", S::kUnary}, {"List", S::kUnary}, {"Delete", S::kUnary}}));
  EXPECT_EQ(
      MethodsOf("mesh.v1.ImageService"),
      (std::map<std::string, S>{
          {"Import", S::kClient}, {"List", S::kUnary}, {"Get", S::kUnary}, {"Remove", S::kUnary}}));
  EXPECT_EQ(MethodsOf("mesh.v1.SystemService"),
            (std::map<std::string, S>{
                {"Version", S::kUnary}, {"Info", S::kUnary}, {"Events", S::kServer}}));
}

// Every enum of the package starts with <NAME>_UNSPECIFIED = 0 and prefixes its values with
// its own name (the proto3 style that keeps values unique in C++ and readable in JSON); every
// file declares package mesh.v1.
TEST(ApiSurfaceTest, EnumAndPackageConventions) {
  std::vector<const FileDescriptor*> files = {
      v1::Container::descriptor()->file(), v1::Network::descriptor()->file(),
      v1::Group::descriptor()->file(),     v1::Image::descriptor()->file(),
      v1::Event::descriptor()->file(),     v1::Labels::descriptor()->file()};
  int enums = 0;
  auto check = [&](const google::protobuf::EnumDescriptor* e) {
    ++enums;
    // CamelCase name to UPPER_SNAKE: "ContainerState" -> "CONTAINER_STATE".
    std::string prefix;
    for (char c : e->name()) {
      if (std::isupper(static_cast<unsigned char>(c)) && !prefix.empty()) prefix += '_';
      prefix += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    ASSERT_GT(e->value_count(), 0) << e->full_name();
    EXPECT_EQ(e->value(0)->number(), 0) << e->full_name();
    EXPECT_EQ(e->value(0)->name(), prefix + "_UNSPECIFIED") << e->full_name();
    for (int i = 0; i < e->value_count(); ++i) {
      EXPECT_EQ(e->value(i)->name().rfind(prefix + "_", 0), 0u) << e->value(i)->full_name();
    }
  };
  std::function<void(const google::protobuf::Descriptor*)> walk =
      [&](const google::protobuf::Descriptor* m) {
        for (int i = 0; i < m->enum_type_count(); ++i) check(m->enum_type(i));
        for (int i = 0; i < m->nested_type_count(); ++i) walk(m->nested_type(i));
      };
  for (const FileDescriptor* f : files) {
    EXPECT_EQ(f->package(), "mesh.v1") << f->name();
    for (int i = 0; i < f->enum_type_count(); ++i) check(f->enum_type(i));
    for (int i = 0; i < f->message_type_count(); ++i) walk(f->message_type(i));
  }
  EXPECT_GE(enums, 10);
}

}  // namespace
}  // namespace mesh
