// Durable charges through the group-commit WAL, in process, with concurrent producers.
//
// Two workspace populations: 100,000 random workspaces (a charge then waits on DRAM for the
// workspace lookup, which bounds the figure long before the WAL does) and a hot set of 1,000
// that stays in cache, which measures what the group-commit WAL itself sustains.
//
// Each producer works like a pipelined connection: it charges a frame of 100 text messages
// (one Ledger::ChargeBatch call), takes a ticket, and keeps up to 64 frames in flight (the second
// argument), waiting for the oldest frame's ticket to be durable before sending
// more. A producer can then go no faster than its frames in flight divided by how long a frame
// waits (about 1.5 group-commit rounds), so the runs with 256 frames in flight show what the WAL
// sustains when producers are not bound by that latency. items_per_second = durable
// (acknowledged) charges per second.
//
//   GENLEDGER_BENCH_DIR=/path/on/the/real/disk build-rel/wal_bench
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "genledger/durability.h"
#include "wal/segment_writer.h"
#include "ledger/ledger_log.h"

namespace genledger {
namespace {

constexpr int kFrame = 100;

struct Fixture {
  std::string dir;
  std::unique_ptr<Ledger> ledger;
  std::unique_ptr<Durability> durability;
  std::vector<std::string> workspaces;
  const CatalogItem* text = nullptr;

  Fixture(SyncMode mode, int workspace_count) {
    const char* base = std::getenv("GENLEDGER_BENCH_DIR");
    dir = std::string(base != nullptr ? base : "/tmp") + "/genledger-wal-bench-" + std::string(SyncModeName(mode)) +
          "-" + std::to_string(workspace_count);
    std::filesystem::remove_all(dir);
    ledger = std::make_unique<Ledger>(Catalog::Default());
    DurabilityOptions opt;
    opt.data_dir = dir;
    opt.sync = mode;
    auto d = Durability::Open(*ledger, opt);
    if (!d.ok()) std::abort();
    durability = std::move(*d);
    text = ledger->CurrentCatalog()->Find("gpt-4o");
    for (int i = 0; i < workspace_count; ++i) {
      workspaces.push_back("workspace-" + std::to_string(i));
      (void)ledger->UpsertWorkspace(workspaces.back(), kMaxLimit, Region::kGlobal);
    }
    (void)durability->WaitDurable(durability->Ticket());
  }
  ~Fixture() {
    durability.reset();
    std::filesystem::remove_all(dir);
  }
};

// One fixture per (mode, population), created by the first thread that asks and kept for the
// process: Google Benchmark runs the threads of one benchmark against the same ledger.
Fixture& Shared(SyncMode mode, int workspace_count) {
  static std::mutex mu;
  static std::map<std::pair<SyncMode, int>, std::unique_ptr<Fixture>> fixtures;
  std::lock_guard lock(mu);
  auto& f = fixtures[{mode, workspace_count}];
  if (!f) f = std::make_unique<Fixture>(mode, workspace_count);
  return *f;
}

void DurableCharges(benchmark::State& state, SyncMode mode) {
  const int workspace_count = int(state.range(0));
  const size_t window = size_t(state.range(1));
  Fixture& f = Shared(mode, workspace_count);
  std::mt19937 rng(state.thread_index() + 1);
  std::deque<uint64_t> in_flight;
  // A frame goes through ChargeBatch, as the server's WebSocket and /v1/batch paths do.
  std::vector<ChargeRequest> frame(kFrame, ChargeRequest{{}, "user-1", f.text, {}, {}});
  std::vector<ChargeResult> results(kFrame);
  for (auto& r : frame) r.usage.quantity = 1;
  // The fixture outlives one run: count this run's rounds only (thread 0 reads before the
  // threads start together and after they all stop).
  const auto before = f.durability->stats();
  for (auto _ : state) {
    for (auto& r : frame) r.workspace = f.workspaces[rng() % workspace_count];
    f.ledger->ChargeBatch(frame, results);
    for (const auto& r : results) {
      if (!r.status.ok()) state.SkipWithError(("charge refused: " + r.status.ToString()).c_str());
    }
    in_flight.push_back(f.durability->Ticket());
    if (in_flight.size() > window) {
      if (!f.durability->WaitDurable(in_flight.front()).ok()) state.SkipWithError("WAL failed");
      in_flight.pop_front();
    }
  }
  // Every charge counted must be acknowledged before the clock stops.
  if (!in_flight.empty()) (void)f.durability->WaitDurable(in_flight.back());
  state.SetItemsProcessed(int64_t(state.iterations()) * kFrame);
  if (state.thread_index() == 0) {
    const auto after = f.durability->stats();
    const uint64_t syncs = after.syncs - before.syncs, records = after.records - before.records;
    state.counters["records_per_fsync"] = syncs ? double(records) / double(syncs) : 0;
    state.counters["max_fsync_us"] = double(after.max_sync_us);   // over the whole process
  }
}

void BM_DurableChargeGroup(benchmark::State& state) { DurableCharges(state, SyncMode::kGroup); }
// Arguments: workspaces, frames in flight per producer. Every registration names both:
// State::range(1) of a one-argument benchmark reads past its vector in a Release build.
BENCHMARK(BM_DurableChargeGroup)->Args({100'000, 64})->Threads(1)->Threads(2)->Threads(4)->UseRealTime()->MinTime(3);
BENCHMARK(BM_DurableChargeGroup)->Args({1'000, 64})->Threads(1)->Threads(2)->Threads(4)->UseRealTime()->MinTime(3);
BENCHMARK(BM_DurableChargeGroup)->Args({1'000, 256})->Threads(1)->Threads(2)->UseRealTime()->MinTime(3);

void BM_DurableChargeNoSync(benchmark::State& state) { DurableCharges(state, SyncMode::kNone); }
BENCHMARK(BM_DurableChargeNoSync)->Args({100'000, 64})->Args({1'000, 64})->Threads(2)->UseRealTime()->MinTime(3);

// The charge path's side of logging, without the disk: 1,000 cache-resident workspaces, logging
// on, and a thread collecting the log lanes every 500 us (about one group-commit round) and
// dropping what it took. Arg 0 runs the same charges with logging off, for comparison.
void BM_ChargeLoggedNoDisk(benchmark::State& state) {
  const bool logged = state.range(0) != 0;
  static std::mutex mu;
  static std::unique_ptr<Ledger> ledgers[2];
  static std::vector<std::string> ids;
  static std::atomic<bool> stop{false};
  static std::thread collector;
  if (state.thread_index() == 0) {
    std::lock_guard lock(mu);
    if (!ledgers[logged]) {
      ledgers[logged] = std::make_unique<Ledger>(Catalog::Default());
      for (int i = 0; i < 1000; ++i) {
        if (ids.size() < 1000) ids.push_back("workspace-" + std::to_string(i));
        (void)ledgers[logged]->UpsertWorkspace(ids[size_t(i)], kMaxLimit, Region::kGlobal);
      }
      if (logged) LedgerLog::EnableLog(*ledgers[logged]);
    }
    stop = false;
    if (logged) {
      collector = std::thread([l = ledgers[logged].get()] {
        std::string taken;
        while (!stop.load()) {
          taken.clear();
          if (!LedgerLog::CollectLog(*l, taken).ok()) std::abort();
          std::this_thread::sleep_for(std::chrono::microseconds(500));
        }
      });
    }
  }
  // Google Benchmark starts the threads' loops together, after every thread's set-up above.
  Ledger& ledger = *ledgers[logged];
  std::mt19937 rng(state.thread_index() + 1);
  std::vector<ChargeRequest> frame(kFrame, ChargeRequest{{}, "user-1", ledger.CurrentCatalog()->Find("gpt-4o"), {}, {}});
  std::vector<ChargeResult> results(kFrame);
  for (auto& r : frame) r.usage.quantity = 1;
  for (auto _ : state) {
    for (auto& r : frame) r.workspace = ids[rng() % ids.size()];
    ledger.ChargeBatch(frame, results);
    if (!results[0].status.ok()) state.SkipWithError("charge refused");
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * kFrame);
  if (state.thread_index() == 0 && logged) {
    stop = true;
    collector.join();
  }
}
BENCHMARK(BM_ChargeLoggedNoDisk)->Arg(0)->Arg(1)->Threads(1)->Threads(2)->UseRealTime();

// The WAL framing layer alone: 73-byte frames appended in runs of 4,096 and written to a segment
// (the OS page cache; no fdatasync), as the writer thread does between syncs.
void BM_SegmentWriterAppend(benchmark::State& state) {
  const char* base = std::getenv("GENLEDGER_BENCH_DIR");
  const std::string dir = std::string(base != nullptr ? base : "/tmp") + "/genledger-segment-bench";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto writer = wal::SegmentWriter::Open(dir, 1);
  if (!writer.ok()) {
    state.SkipWithError("cannot open a segment");
    return;
  }
  const std::string payload(56, 'x');
  for (auto _ : state) {
    for (int i = 0; i < 4096; ++i) (*writer)->Append(1, payload);
    if (!(*writer)->Flush().ok()) state.SkipWithError("write failed");
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * 4096);
  state.SetBytesProcessed(int64_t(state.iterations()) * 4096 * (56 + 17));
  writer->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_SegmentWriterAppend)->UseRealTime();

}  // namespace
}  // namespace genledger

BENCHMARK_MAIN();
