// How long a snapshot holds each shard's lock: the state of recovery_bench's snapshot
// (bench_population.h: 1,000,000 workspaces x 5 users, each user created by one charge, so every
// shard's refund ring is full),
// copied shard by shard into one reused buffer as Durability does. Builds in memory (~10 s), no
// disk, so the hold can be measured and profiled apart from recovery_bench's 1.1 GB directory.
//
//   build-rel/snapshot_bench
//   perf record -g build-rel/snapshot_bench --benchmark_filter=BM_SnapshotAllShards/
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "genledger/ledger.h"

#include "bench_population.h"
#include "ledger/ledger_log.h"

namespace genledger {
namespace {

Ledger& Shared() {
  static Ledger* ledger = [] {
    auto* l = new Ledger(Catalog::Default());   // shared by every benchmark; never freed
    LedgerLog::EnableLog(*l);                             // as under Durability: records are produced
    bench::Populate(*l, [l](int t, uint64_t w) {
      // Stands in for the WAL writer (one thread, as DrainLog wants), so no log lane reaches
      // its backpressure bound.
      if (t == 0 && w % 4096 == 0 && !LedgerLog::DrainLog(*l, [](uint8_t, std::string_view) {}).ok()) std::abort();
    });
    if (!LedgerLog::DrainLog(*l, [](uint8_t, std::string_view) {}).ok()) std::abort();
    return l;
  }();
  return *ledger;
}

// One whole snapshot per iteration. Arg 0: the buffer is kept across iterations (Durability's
// steady state); arg 1: a fresh buffer each time (its first snapshot after start-up).
// Counters: the shard holds' median, 99th percentile and maximum over all iterations. On a
// shared VM the maximum is mostly whether the thread was descheduled during some hold.
void BM_SnapshotAllShards(benchmark::State& state) {
  const Ledger& l = Shared();
  std::string buf;
  std::vector<uint64_t> holds;
  uint64_t bytes = 0;
  for (auto _ : state) {
    if (state.range(0) == 1) std::string().swap(buf);
    for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
      uint64_t record_no = 0, hold_ns = 0;
      if (Status st = LedgerLog::SnapshotShard(l, i, buf, &record_no, &hold_ns); !st.ok()) {
        state.SkipWithError(st.ToString().c_str());
        return;
      }
      holds.push_back(hold_ns);
      bytes += buf.size();
    }
  }
  std::sort(holds.begin(), holds.end());
  auto us = [&](double q) { return double(holds[size_t(q * double(holds.size() - 1))]) / 1e3; };
  state.counters["hold_p50_us"] = us(0.5);
  state.counters["hold_p99_us"] = us(0.99);
  state.counters["hold_max_us"] = us(1.0);
  state.counters["shard_KB"] = double(bytes) / 1e3 / double(holds.size());
}
BENCHMARK(BM_SnapshotAllShards)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace
}  // namespace genledger

BENCHMARK_MAIN();
