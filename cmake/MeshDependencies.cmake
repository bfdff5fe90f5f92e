# Every dependency is a Debian 12 package (deploy/install-deps.sh installs them all).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

find_package(absl CONFIG REQUIRED)
# Debian's protobuf 3.21 has no CMake config; CMake's FindProtobuf provides protobuf_generate().
find_package(Protobuf REQUIRED)
# Needs protobuf-compiler-grpc for gRPC::grpc_cpp_plugin.
find_package(gRPC CONFIG REQUIRED)
find_package(yaml-cpp CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)

pkg_check_modules(LIBNL REQUIRED IMPORTED_TARGET libnl-3.0 libnl-route-3.0)
pkg_check_modules(LIBMNL REQUIRED IMPORTED_TARGET libmnl)
pkg_check_modules(LIBNFTNL REQUIRED IMPORTED_TARGET libnftnl)
pkg_check_modules(LIBSECCOMP REQUIRED IMPORTED_TARGET libseccomp)
pkg_check_modules(LIBSYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
# Image layers: libarchive reads tar (ustar, pax, GNU) and gzip; OpenSSL's libcrypto hashes
# (sha256 digests of the content-addressed store). Both are gRPC dependencies on Debian anyway.
pkg_check_modules(LIBARCHIVE REQUIRED IMPORTED_TARGET libarchive)
find_package(OpenSSL REQUIRED)
# meshd's embedded DNS reads and writes DNS messages with ldns.
pkg_check_modules(LDNS REQUIRED IMPORTED_TARGET ldns)

if(MESH_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
endif()
if(MESH_BUILD_BENCHMARKS)
  find_package(benchmark CONFIG REQUIRED)
endif()
