#pragma once

// What the sandbox benchmarks print: percentiles of latency samples in milliseconds.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

namespace mesh::bench {

struct Percentiles {
  double p50, p90, p99;
};

// Nearest-rank percentiles of `ms` (not empty).
inline Percentiles Summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) {
    return ms[static_cast<size_t>(q * static_cast<double>(ms.size() - 1))];
  };
  return {at(0.50), at(0.90), at(0.99)};
}

inline double Ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace mesh::bench
