#pragma once

// "Did you mean ...?" for names people type: unknown config keys, spec keys, member names.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace mesh {

// Levenshtein distance: the fewest single-character insertions, deletions and substitutions
// that turn `a` into `b`. O(|a| * |b|) time, O(|b|) memory.
size_t EditDistance(absl::string_view a, absl::string_view b);

// The entry of `known` that `typed` most likely misspells, or nullopt if none is close.
// Both sides are compared in lower case with '-' read as '_' (so "State-Dir" and "stateDir"
// are near "state_dir"). An entry is close when its distance to `typed` is at most
// max(2, its length / 3), or when one starts with the other and `typed` has 3 characters or
// more ("shim" for "shim_path"). The closest entry wins; on a tie, the first in `known`.
// Returns the entry as spelled in `known`.
std::optional<std::string> ClosestMatch(absl::string_view typed,
                                        const std::vector<std::string>& known);

}  // namespace mesh
