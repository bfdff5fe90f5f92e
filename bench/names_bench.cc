// Cost of deriving deterministic link names and MACs (called on every attach and during
// recovery for every record). Run: build/release/bench/names_bench
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "netplane/network/names.h"

namespace {

void BM_VethHostName(benchmark::State& state) {
  std::string container = absl::StrCat("container-", state.range(0));
  for (auto _ : state) {
    benchmark::DoNotOptimize(mesh::netplane::VethHostName(container, "front"));
  }
}
BENCHMARK(BM_VethHostName)->Arg(1)->Arg(1000000);

void BM_ContainerMac(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(mesh::netplane::ContainerMac("web-1", "front"));
  }
}
BENCHMARK(BM_ContainerMac);

}  // namespace

BENCHMARK_MAIN();
