#pragma once

// ldns, included the one way that works in C++: its common.h defines `bool`, `true` and
// `false` as macros (0 and 1, so `true <=> false` no longer compiles in <optional>) unless
// <stdbool.h>'s __bool_true_false_are_defined is there first.
// clang-format off
#include <stdbool.h>  // NOLINT(modernize-deprecated-headers)
#include <ldns/ldns.h>
// clang-format on
