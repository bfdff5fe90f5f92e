#include "base/suggest.h"

#include <algorithm>

namespace mesh {
namespace {

// Lower case with '-' as '_'.
std::string NormalizeKey(absl::string_view key) {
  std::string out(key);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c == '-') c = '_';
  }
  return out;
}

}  // namespace

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::optional<std::string> ClosestMatch(absl::string_view typed,
                                        const std::vector<std::string>& known) {
  const std::string normal_typed = NormalizeKey(typed);
  const std::string* best = nullptr;
  size_t best_distance = 0;
  for (const std::string& candidate : known) {
    const std::string name = NormalizeKey(candidate);
    const size_t distance = EditDistance(normal_typed, name);
    // A close spelling, or one name starting the other.
    const bool near = distance <= std::max<size_t>(2, name.size() / 3) ||
                      (normal_typed.size() >= 3 &&
                       (name.starts_with(normal_typed) || normal_typed.starts_with(name)));
    if (near && (best == nullptr || distance < best_distance)) {
      best = &candidate;
      best_distance = distance;
    }
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

}  // namespace mesh
