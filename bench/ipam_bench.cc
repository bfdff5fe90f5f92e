// Cost of one IPAM lease change (allocate + release, each persisted) with N leases already in
// the pool: the part of attach/detach that is ours alone, no kernel involved. Each change is
// one journal append + fdatasync; the snapshot rewrites of compaction (one per max(64, N)
// changes) are included, amortized over the iterations. The time should not grow with N.
//   build/release/bench/ipam_bench
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "netplane/ipam/ipam.h"

namespace {

using mesh::netplane::ipam::Ipam;
using mesh::netplane::ipam::IpPrefix;

void BM_AllocateRelease(benchmark::State& state) {
  char tmpl[] = "/tmp/mesh-ipam-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  auto ipam = Ipam::Open(tmpl);
  if (!ipam.ok() || !(*ipam)->AddPool("bench", *IpPrefix::Parse("10.80.0.0/16"), {}).ok()) {
    state.SkipWithError("cannot set up the pool");
    return;
  }
  for (int64_t i = 0; i < state.range(0); ++i) {
    (*ipam)->Allocate("bench", absl::StrCat("old-", i, "/eth0"), {}).IgnoreError();
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize((*ipam)->Allocate("bench", "new/eth0", {}));
    (*ipam)->Release("bench", "new/eth0").IgnoreError();
  }
  std::filesystem::remove_all(tmpl);
}
BENCHMARK(BM_AllocateRelease)
    ->Arg(1)
    ->Arg(100)
    ->Arg(1000)
    ->Arg(10000)
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
