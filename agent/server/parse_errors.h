#pragma once

// A request that does not parse (a proto3 string field holding invalid UTF-8, or bytes that
// are not the message at all) never reaches a handler: gRPC answers INTERNAL with an empty
// message. This server interceptor turns that into INVALID_ARGUMENT saying what to fix, so
// a client's bad input reads as bad input (TESTING.md #19).

#include <memory>

#include "grpcpp/support/server_interceptor.h"

namespace mesh::agent {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> ParseErrorInterceptors();

// What a stream handler says when its first message is missing: none came, or it did not
// parse (which a stream handler cannot tell apart: a message that fails to parse ends its
// reads as a client's half-close does).
inline constexpr char kFirstMessageMissingHint[] =
    "none came, or it did not parse (every string field must be valid UTF-8)";

}  // namespace mesh::agent
