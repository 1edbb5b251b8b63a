// Child process for crash_test: charges in a loop and prints "ACK <op>" for every charge only
// after its WAL record is durable. The parent kills it with SIGKILL at a random moment.
//
//   genledger_crash_child DATA_DIR FIRST_OP THREADS
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "genledger/durability.h"

using namespace genledger;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s DATA_DIR FIRST_OP THREADS\n", argv[0]);
    return 2;
  }
  Ledger ledger(Catalog::Default());
  DurabilityOptions opt;
  opt.data_dir = argv[1];
  opt.segment_bytes = 64 << 10;   // many segments, so rotation is crashed into too
  RecoveryReport report;
  auto d = Durability::Open(ledger, opt, &report);
  if (!d.ok()) {
    std::fprintf(stderr, "open: %s\n", d.status().ToString().c_str());
    return 3;
  }
  for (int w = 0; w < 8; ++w) (void)ledger.UpsertWorkspace("w" + std::to_string(w), 1'000'000'000, Region::kGlobal);
  std::printf("READY\n");
  std::fflush(stdout);
  const uint64_t first = std::strtoull(argv[2], nullptr, 10);
  const int threads = std::atoi(argv[3]);
  std::mutex out_mu;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const CatalogItem* text = ledger.CurrentCatalog()->Find("gpt-4o");
      for (uint64_t op = first + uint64_t(t);; op += uint64_t(threads)) {
        const std::string id = "op-" + std::to_string(op);
        const std::string ws = "w" + std::to_string(op % 8);
        const std::string user = "u" + std::to_string(op % 3);
    ChargeRequest req{ws, user, text, {}, id};
        req.usage.quantity = 1 + op % 5;
        if (ChargeResult r = ledger.Charge(req); !r.status.ok()) {
          std::fprintf(stderr, "charge %s: %s\n", id.c_str(), r.status.ToString().c_str());
          std::exit(4);
        }
        if (op % 7 == 0) (void)ledger.ResetPeriod(ws);   // order-dependent records in the mix
        if (!(*d)->WaitDurable((*d)->Ticket()).ok()) return;
        std::lock_guard lock(out_mu);
        std::printf("ACK %llu\n", static_cast<unsigned long long>(op));
        std::fflush(stdout);
      }
    });
  }
  for (auto& th : pool) th.join();
  return 0;
}
