// Power-cut simulation driver (docs/testing.md, "Power-cut simulation"): mixed load through the
// real Ledger + Durability stack on a PowerCutFileSystem, power cut at a random file-system call,
// the files rewritten to what survives, recovery into a fresh Ledger, and a check against what
// was acknowledged. Used by simulation_test.cc (CI) and tools/simulate.sh (long runs).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "genledger/durability.h"
#include "genledger/ledger.h"
#include "wal/power_cut_fs.h"

namespace genledger::sim {

struct SimStats {
  uint64_t cuts = 0, ops = 0, acknowledged = 0, in_flight_applied = 0, in_flight_lost = 0;
  uint64_t torn_tails = 0, snapshots_started = 0, snapshots = 0, recovered_from_snapshot = 0, retries_checked = 0;
  uint64_t bytes_torn_kept = 0, dir_ops_undone = 0;
  // Subscription ops that took effect: grants added and voided, plan changes, period boundaries
  // the sweep applied, refunds of charges drawn from grants or overage (WAL types 15-19).
  uint64_t grants = 0, voids = 0, plan_changes = 0, rollovers = 0, source_refunds = 0;
  // Other ledger state that took effect: alert sets (WAL type 22), tokens minted (26), webhooks
  // added (23) and cursor moves (25).
  uint64_t alert_sets = 0, tokens = 0, webhooks = 0, webhook_progress = 0;
};

// One seeded run of `cuts` power cuts on one data directory. Not thread-safe.
class Simulation {
 public:
  Simulation(std::string dir, uint64_t seed) : dir_(std::move(dir)), seed_(seed), rng_(seed) {}

  // Runs the cycles; returns ok or the first failure, whose message names the seed and the cut
  // number (the cycle that recovered wrongly) for replaying.
  Status Run(uint32_t cuts);
  const SimStats& stats() const { return stats_; }

 private:
  // An idempotent charge whose answer the ledger gave: retried after recovery.
  struct IdemCharge {
    std::string ws, user, id;
    uint64_t quantity = 0, charge_id = 0, at_ms = 0;
    size_t op = 0;   // index (1-based) of the op in its cycle
  };

  Status Cycle(uint32_t cut);
  Status Recover(uint32_t cut);
  Status CheckRecovered(uint32_t cut, const RecoveryReport& rep);
  std::string Op();   // one random op; returns what it did
  WorkspaceUpdate PlanChange();   // a random subscription setting
  std::string SideOp(uint64_t which, const std::string& ws);   // alerts, tokens, webhooks
  // Sums over the workspaces, read without applying anything due (for the stats).
  struct SubscriptionSums {
    uint64_t periods = 0, used = 0, granted = 0, overage = 0;
  };
  SubscriptionSums Sums() const;
  void Record(const std::string& name);
  uint64_t Digest() const;   // the state digest, the catalog's version and the rate charged
  ChargeRequest Text(const std::string& ws, const std::string& user, uint64_t n, const std::string& id) const;
  Status Fail(uint32_t cuts, const std::string& what) const;
  uint64_t Pick(uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  std::string dir_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  ManualClock clock_;
  wal::PowerCutFileSystem fs_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<Durability> dur_;
  SimStats stats_;

  // The cycle being run / just cut: digests_[i] is the state digest after i of its ops (0: as
  // recovered), ops 1..acked_ were acknowledged (their ticket durable).
  std::vector<uint64_t> digests_;
  size_t acked_ = 0;
  std::vector<IdemCharge> applied_idem_;   // this cycle's idempotent charges that applied
  std::vector<IdemCharge> older_idem_;     // acknowledged in earlier cycles (recent ones)
  std::vector<uint64_t> charge_ids_, reservation_ids_;   // hints for refund/commit/release
  std::vector<uint64_t> token_ids_;                      // hints for revoke
  uint64_t next_id_ = 0;
  uint64_t fs_calls_ = 100;   // file-system calls the last cycle made before its cut
  std::string live_failure_;
  std::optional<int64_t> rearm_cut_;   // set by an expiry or admin update: cuts suspended until it is durable
  // GENLEDGER_SIM_DEBUG=1: keep a readable state and op name per op, printed on a failure.
  bool debug_ = std::getenv("GENLEDGER_SIM_DEBUG") != nullptr;
  std::vector<std::string> coarse_, op_names_;
  std::string Coarse() const;
  void Name(std::string n) { if (debug_) op_names_.push_back(std::move(n)); }   // a live idempotent retry that was not replayed
};

}  // namespace genledger::sim
