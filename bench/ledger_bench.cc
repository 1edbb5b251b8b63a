// In-process ledger throughput: check-and-debit of one text message on random workspaces,
// looked up by their string ids, as the server's hot path does.
//
//   build/ledger_bench --benchmark_filter=BM_LedgerCharge
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "genledger/ledger.h"

namespace genledger {
namespace {

constexpr int kWorkspaces = 100'000;
constexpr int kUsersPerWorkspace = 5;

struct Fixture {
  std::vector<std::string> workspaces;
  std::vector<std::string> users;
  std::unique_ptr<Ledger> ledger;
  const CatalogItem* text = nullptr;

  Fixture() {
    LedgerOptions opt;
    if (const char* cap = std::getenv("BENCH_REFUND_CAPACITY")) opt.refund_capacity = std::strtoull(cap, nullptr, 10);
    ledger = std::make_unique<Ledger>(Catalog::Default(), opt);
    text = ledger->CurrentCatalog()->Find("openai-gpt-4o");
    for (int i = 0; i < kWorkspaces; ++i) {
      workspaces.push_back("workspace-" + std::to_string(i));
      // Limits large enough never to refuse during a run.
      (void)ledger->UpsertWorkspace(workspaces.back(), kMaxLimit, Region::kGlobal);
    }
    for (int u = 0; u < kUsersPerWorkspace; ++u) users.push_back("user-" + std::to_string(u));
  }
};

Fixture& Shared() {
  static Fixture* f = new Fixture();   // shared by the benchmark's threads; never freed
  return *f;
}

// The same workspaces, each with 5 live grants (issue 14 §6): a promo that burns before the
// plan (priority 50, expiring in a year), two packs after it, two more promos of priority 200.
// Every charge is drawn from the first promo, so it takes the subscription path (burn order)
// and keeps a breakdown for its refund: the grants' worst common case.
Fixture& SharedWithGrants() {
  static Fixture* f = [] {
    auto* fx = new Fixture();
    const uint64_t year = uint64_t(365) * 24 * 3600 * 1000;
    const uint64_t expiry = SystemClock().NowMs() + year;
    for (const std::string& ws : fx->workspaces) {
      for (auto [priority, expires] : {std::pair<uint16_t, uint64_t>{50, expiry}, {100, 0}, {100, 0},
                                       {200, expiry}, {200, expiry + 1}}) {
        GrantRequest g;
        g.amount = kMaxLimit / 8;
        g.priority = priority;
        g.expires_at_ms = expires;
        g.source = GrantSource::kPromo;
        (void)fx->ledger->AddGrant(ws, g);
      }
    }
    return fx;
  }();
  return *f;
}

// A pre-drawn random sequence per thread keeps the RNG out of the measured loop.
std::vector<uint32_t> RandomOrder(int seed, uint32_t range = kWorkspaces) {
  std::mt19937 rng(seed);
  std::vector<uint32_t> order(1 << 20);
  for (auto& o : order) o = rng() % range;
  return order;
}

// The goal benchmark: random workspaces out of 100,000 (a working set far larger than this
// machine's caches, so it measures memory latency as much as code).
void ChargeLoop(benchmark::State& state, uint32_t range, Fixture& f = Shared()) {
  const std::vector<uint32_t> order = RandomOrder(state.thread_index() + 1, range);
  ChargeRequest req{{}, {}, f.text, {}, {}};
  req.usage.quantity = 1;
  size_t i = 0;
  for (auto _ : state) {
    const uint32_t w = order[i & (order.size() - 1)];
    req.workspace = f.workspaces[w];
    req.user = f.users[(w + i) % kUsersPerWorkspace];
    ChargeResult r = f.ledger->Charge(req);
    benchmark::DoNotOptimize(r.remaining);
    if (!r.status.ok()) state.SkipWithError("charge refused");
    ++i;
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}

void BM_LedgerCharge(benchmark::State& state) { ChargeLoop(state, kWorkspaces); }
BENCHMARK(BM_LedgerCharge)->Threads(1)->Threads(2)->UseRealTime();

// BM_LedgerCharge on workspaces that have 5 live grants each.
void BM_LedgerChargeGrants(benchmark::State& state) { ChargeLoop(state, kWorkspaces, SharedWithGrants()); }
BENCHMARK(BM_LedgerChargeGrants)->Threads(1)->Threads(2)->UseRealTime();

// The same loop over the first 1,000 workspaces only: cache-resident, so it shows what the code
// path itself costs.
void BM_LedgerChargeCacheResident(benchmark::State& state) { ChargeLoop(state, 1000); }
BENCHMARK(BM_LedgerChargeCacheResident)->Threads(1)->Threads(2)->UseRealTime();

// The same charges handed over in frames of 64, as the WebSocket bulk path does.
void BM_LedgerChargeBatch(benchmark::State& state) {
  Fixture& f = Shared();
  const std::vector<uint32_t> order = RandomOrder(state.thread_index() + 101);
  constexpr size_t kBatch = 64;
  std::vector<ChargeRequest> reqs(kBatch, ChargeRequest{{}, {}, f.text, {}, {}});
  std::vector<ChargeResult> results(kBatch);
  size_t i = 0;
  for (auto _ : state) {
    for (size_t k = 0; k < kBatch; ++k, ++i) {
      const uint32_t w = order[i & (order.size() - 1)];
      reqs[k].workspace = f.workspaces[w];
      reqs[k].user = f.users[(w + i) % kUsersPerWorkspace];
      reqs[k].usage.quantity = 1;
    }
    f.ledger->ChargeBatch(reqs, results);
    benchmark::DoNotOptimize(results.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations() * kBatch));
}
BENCHMARK(BM_LedgerChargeBatch)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace genledger

BENCHMARK_MAIN();
