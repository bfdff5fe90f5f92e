#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// MESH_RETURN_IF_ERROR(expr): evaluates `expr` (an absl::Status) once and returns it from the
// enclosing function if it is not OK.
#define MESH_RETURN_IF_ERROR(expr)                                  \
  do {                                                              \
    if (::absl::Status mesh_status_ = (expr); !mesh_status_.ok()) { \
      return mesh_status_;                                          \
    }                                                               \
  } while (0)

// MESH_ASSIGN_OR_RETURN(lhs, expr): evaluates `expr` (an absl::StatusOr<T>); on error returns
// its status, otherwise moves the value into `lhs`, which may be a declaration:
//   MESH_ASSIGN_OR_RETURN(UniqueFd fd, OpenDir(path));
#define MESH_ASSIGN_OR_RETURN(lhs, expr) \
  MESH_ASSIGN_OR_RETURN_IMPL_(MESH_STATUS_CONCAT_(mesh_statusor_, __LINE__), lhs, expr)

#define MESH_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr)   \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#define MESH_STATUS_CONCAT_INNER_(a, b) a##b
#define MESH_STATUS_CONCAT_(a, b) MESH_STATUS_CONCAT_INNER_(a, b)
