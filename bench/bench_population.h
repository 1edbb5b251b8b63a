// The population recovery_bench snapshots and snapshot_bench copies: 1,000,000 workspaces with
// 5 users each, every user created by one charge (so each shard's refund ring is full). Shared so
// that both benchmarks measure the same state.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "genledger/ledger.h"

namespace genledger::bench {

inline constexpr uint64_t kWorkspaces = 1'000'000;
inline constexpr uint64_t kUsers = 5;
inline const std::string kUserIds[kUsers] = {"u0", "u1", "u2", "u3", "u4"};

inline std::string WsId(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "ws-%07llu", static_cast<unsigned long long>(i));
  return buf;
}

// Runs body(t) for t = 0, 1 on two threads and joins them (the machine has two cores).
template <typename Body>
void OnTwoThreads(Body&& body) {
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; ++t) ts.emplace_back([&, t] { body(t); });
  for (auto& th : ts) th.join();
}

// Creates the population in `ledger` on two threads. after_workspace(thread, w), if given, runs
// after workspace w is complete (snapshot_bench drains the log there, standing in for the WAL
// writer). Requires: the workspaces do not exist yet.
inline void Populate(Ledger& ledger, const std::function<void(int, uint64_t)>& after_workspace = {}) {
  const CatalogItem* item = ledger.CurrentCatalog()->Find("gpt-4o");
  OnTwoThreads([&](int t) {
    for (uint64_t w = uint64_t(t); w < kWorkspaces; w += 2) {
      const std::string id = WsId(w);
      (void)ledger.UpsertWorkspace(id, 1'000'000'000, Region::kGlobal);
      for (const std::string& u : kUserIds) {   // the first charge creates the user
        ChargeRequest r{id, u, item, {}, {}};
        r.usage.quantity = 1;
        (void)ledger.Charge(r);
      }
      if (after_workspace) after_workspace(t, w);
    }
  });
}

}  // namespace genledger::bench
