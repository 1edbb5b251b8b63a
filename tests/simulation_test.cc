// Power-cut simulation in CI (docs/testing.md, "Power-cut simulation"): seeded runs of mixed load,
// each cut at a random file-system call, recovered and checked against what was acknowledged.
//
// Environment (tools/simulate.sh sets it): GENLEDGER_SIM_CUTS total cuts (default 1000),
// GENLEDGER_SIM_CUTS_PER_SEED (default 100), GENLEDGER_SIM_SEED first seed (default 1; seeds
// are consecutive). A failure names its seed and how to replay it.
#include "simulation.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "temp_dir.h"

namespace genledger::sim {
namespace {

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(Simulation, PowerCutsLoseNothingAcknowledgedAndApplyNothingTwice) {
  const uint64_t total = EnvOr("GENLEDGER_SIM_CUTS", 1000);
  const uint64_t per_seed = std::max<uint64_t>(1, EnvOr("GENLEDGER_SIM_CUTS_PER_SEED", 100));
  const uint64_t first_seed = EnvOr("GENLEDGER_SIM_SEED", 1);
  SimStats sum;
  uint64_t seed = first_seed;
  for (uint64_t done = 0; done < total; done += per_seed, ++seed) {
    genledger::testing::TempDir dir;
    Simulation sim(dir.path(), seed);
    const Status st = sim.Run(static_cast<uint32_t>(std::min(per_seed, total - done)));
    ASSERT_TRUE(st.ok()) << st.ToString();
    const SimStats& s = sim.stats();
    sum.cuts += s.cuts;
    sum.ops += s.ops;
    sum.acknowledged += s.acknowledged;
    sum.in_flight_applied += s.in_flight_applied;
    sum.in_flight_lost += s.in_flight_lost;
    sum.torn_tails += s.torn_tails;
    sum.snapshots_started += s.snapshots_started;
    sum.snapshots += s.snapshots;
    sum.recovered_from_snapshot += s.recovered_from_snapshot;
    sum.retries_checked += s.retries_checked;
    sum.bytes_torn_kept += s.bytes_torn_kept;
    sum.dir_ops_undone += s.dir_ops_undone;
    sum.grants += s.grants;
    sum.voids += s.voids;
    sum.plan_changes += s.plan_changes;
    sum.rollovers += s.rollovers;
    sum.source_refunds += s.source_refunds;
    sum.alert_sets += s.alert_sets;
    sum.tokens += s.tokens;
    sum.webhooks += s.webhooks;
    sum.webhook_progress += s.webhook_progress;
  }
  std::cout << "simulation: seeds " << first_seed << ".." << seed - 1 << ", " << sum.cuts << " power cuts, "
            << sum.ops << " ops, " << sum.acknowledged << " acknowledged, in flight at a cut: "
            << sum.in_flight_applied << " kept + " << sum.in_flight_lost << " lost, " << sum.torn_tails
            << " torn tails, " << sum.snapshots << " of " << sum.snapshots_started << " snapshots completed, " << sum.recovered_from_snapshot
            << " recoveries from a snapshot, " << sum.retries_checked << " idempotent retries checked, "
            << sum.bytes_torn_kept << " torn bytes kept, " << sum.dir_ops_undone << " directory ops undone; subscriptions: " << sum.grants << " grants, "
            << sum.voids << " voids, " << sum.plan_changes << " plan changes, " << sum.rollovers
            << " boundaries swept, " << sum.source_refunds << " refunds to grants or overage; " << sum.alert_sets
            << " alert sets, " << sum.tokens << " tokens, " << sum.webhooks << " webhooks added, " << sum.webhook_progress
            << " webhook cursor moves\n";
  EXPECT_EQ(sum.cuts, total);
  // The run must have exercised what it claims to check (a run that never tore a tail or never
  // lost an in-flight op would prove little).
  if (total >= 200) {
    EXPECT_GT(sum.acknowledged, 0u);
    EXPECT_GT(sum.torn_tails, 0u);
    EXPECT_GT(sum.in_flight_lost, 0u);
    EXPECT_GT(sum.recovered_from_snapshot, 0u);
    EXPECT_GT(sum.retries_checked, 0u);
    EXPECT_GT(sum.dir_ops_undone, 0u);
    EXPECT_GT(sum.grants, 0u);
    EXPECT_GT(sum.voids, 0u);
    EXPECT_GT(sum.plan_changes, 0u);
    EXPECT_GT(sum.rollovers, 0u);
    EXPECT_GT(sum.source_refunds, 0u);
    EXPECT_GT(sum.alert_sets, 0u);
    EXPECT_GT(sum.tokens, 0u);
    EXPECT_GT(sum.webhooks, 0u);
    EXPECT_GT(sum.webhook_progress, 0u);
  }
}

}  // namespace
}  // namespace genledger::sim
