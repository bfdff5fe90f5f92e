#pragma once

// What the sandbox benchmarks share: percentiles of latency samples in milliseconds, and
// waiting for idle CPUs between phases.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
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

// Waits (up to 60 s) until the CPUs are at least 90% idle over half a second. The kernel tears
// network namespaces down in the background after their last reference goes (NOTES.md); a
// phase that starts while that runs is billed for the previous phase's cleanup.
inline void WaitForIdleCpus() {
  auto sample = [] {
    std::ifstream stat("/proc/stat");
    std::string cpu;
    uint64_t v[8] = {};
    stat >> cpu >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5] >> v[6] >> v[7];
    uint64_t total = 0;
    for (uint64_t x : v) total += x;
    return std::pair<uint64_t, uint64_t>(v[3] + v[4], total);  // idle + iowait, all
  };
  for (int i = 0; i < 120; ++i) {
    auto [idle0, total0] = sample();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto [idle1, total1] = sample();
    if (total1 > total0 && (idle1 - idle0) * 10 >= (total1 - total0) * 9) return;
  }
}

}  // namespace mesh::bench
