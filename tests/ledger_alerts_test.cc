// Alerts and derived events in the ledger (docs/events.md, "Alerts", "Event ids and the
// outbox"): crossings fire once, recover and fire again; the built-in depleted and period_reset;
// the same events, with the same ids, after replaying the WAL and after a snapshot plus replay.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "genledger/ledger.h"
#include "genledger/period.h"
#include "ledger/ledger_log.h"
#include "ledger/log_record.h"

namespace genledger {
namespace {

uint64_t T(std::string_view rfc3339) {
  Result<uint64_t> t = ParseTimeMs(rfc3339);
  EXPECT_TRUE(t.ok()) << rfc3339;
  return t.ok() ? *t : 0;
}

// Every kept event of every shard, shard by shard.
std::vector<LedgerEvent> AllEvents(const Ledger& l) {
  std::vector<LedgerEvent> out;
  for (uint32_t shard = 0; shard < Ledger::ShardCount(); ++shard) l.ReadEvents(shard, 0, SIZE_MAX, out);
  return out;
}

// A compact picture of an event for assertions: "alert 80pct fired", "depleted recovered", ...
std::string Describe(const LedgerEvent& e) {
  std::string s(EventKindName(e.kind));
  if (e.kind == EventKind::kAlert) s += " " + e.alert;
  if (e.kind != EventKind::kPeriodReset) s += e.fired ? " fired" : " recovered";
  return s;
}

class AlertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clock_.Set(T("2026-01-31T12:00:00Z"));
    ledger_ = Make();
  }
  std::unique_ptr<Ledger> Make() {
    LedgerOptions opt;
    opt.clock = &clock_;
    opt.refund_window_ms = uint64_t(90) * 24 * 3600 * 1000;
    return std::make_unique<Ledger>(Catalog::Default(), opt);
  }
  ChargeRequest Text(std::string_view ws, uint64_t n, std::string_view user = "alice") {
    ChargeRequest r{ws, user, Catalog::Default()->Find("openai-gpt-4o"), {}, {}};
    r.usage.quantity = n;   // 1 generation per message
    return r;
  }
  uint64_t Charge(std::string_view ws, uint64_t n, Ledger* l = nullptr) {
    ChargeResult r = (l != nullptr ? l : ledger_.get())->Charge(Text(ws, n));
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    return r.charge_id;
  }
  void Refund(uint64_t charge, Ledger* l = nullptr) {
    RefundResult r = (l != nullptr ? l : ledger_.get())->Refund(charge);
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  }
  // The events of `ws` appended since the last call, described.
  std::vector<std::string> NewEvents(std::string_view ws) {
    std::vector<std::string> out;
    for (const LedgerEvent& e : AllEvents(*ledger_)) {
      if (e.workspace != ws || seen_.count(e.id) != 0) continue;
      seen_[e.id] = true;
      out.push_back(Describe(e));
    }
    return out;
  }
  std::vector<LedgerEvent> EventsOf(std::string_view ws) {
    std::vector<LedgerEvent> out;
    for (LedgerEvent& e : AllEvents(*ledger_)) {
      if (e.workspace == ws) out.push_back(std::move(e));
    }
    return out;
  }
  std::map<std::string, bool> States(std::string_view ws, const Ledger* l = nullptr) {
    auto alerts = (l != nullptr ? l : ledger_.get())->GetAlerts(ws);
    EXPECT_TRUE(alerts.ok()) << alerts.status().ToString();
    std::map<std::string, bool> out;
    if (alerts.ok()) {
      for (const AlertInfo& a : *alerts) out[a.name] = a.fired;
    }
    return out;
  }

  ManualClock clock_;
  std::unique_ptr<Ledger> ledger_;
  std::map<uint64_t, bool> seen_;
};

using Events = std::vector<std::string>;

TEST_F(AlertsTest, CrossingsFireOnceAndRecoverAndFireAgain) {
  ASSERT_TRUE(ledger_->UpsertWorkspace("acme", 100, Region::kGlobal).ok());
  ASSERT_TRUE(ledger_->SetAlerts("acme", {{"80pct", AlertWhen::kUsedPercent, 80}, {"low", AlertWhen::kRemaining, 10}}).ok());
  EXPECT_EQ(NewEvents("acme"), Events{});
  Charge("acme", 50);
  const uint64_t c29 = Charge("acme", 29);
  EXPECT_EQ(NewEvents("acme"), Events{});   // 79%
  clock_.Advance(1000);
  Charge("acme", 1);                         // 80%: crosses
  EXPECT_EQ(NewEvents("acme"), Events{"alert 80pct fired"});
  const LedgerEvent fired = EventsOf("acme").back();
  EXPECT_EQ(fired.used, 80u);
  EXPECT_EQ(fired.remaining, 20u);
  EXPECT_EQ(fired.limit, 100u);
  EXPECT_EQ(fired.period, 1u);
  EXPECT_EQ(fired.at_ms, clock_.NowMs());
  const uint64_t c5a = Charge("acme", 5);
  EXPECT_EQ(NewEvents("acme"), Events{});   // still above: no second firing
  const uint64_t c5b = Charge("acme", 5);   // remaining 10
  EXPECT_EQ(NewEvents("acme"), Events{"alert low fired"});
  const uint64_t c1 = Charge("acme", 1);
  EXPECT_EQ(NewEvents("acme"), Events{});
  EXPECT_EQ(States("acme"), (std::map<std::string, bool>{{"80pct", true}, {"low", true}}));

  Refund(c1);                                // remaining 10: still low
  EXPECT_EQ(NewEvents("acme"), Events{});
  Refund(c5b);                               // remaining 15
  EXPECT_EQ(NewEvents("acme"), Events{"alert low recovered"});
  Refund(c5a);                               // used 80: still 80%
  EXPECT_EQ(NewEvents("acme"), Events{});
  Refund(c29);                               // used 51
  EXPECT_EQ(NewEvents("acme"), Events{"alert 80pct recovered"});
  EXPECT_EQ(States("acme"), (std::map<std::string, bool>{{"80pct", false}, {"low", false}}));
  Charge("acme", 29);
  EXPECT_EQ(NewEvents("acme"), Events{"alert 80pct fired"});
}

TEST_F(AlertsTest, HoldsCountForRemainingNotForUsedPercent) {
  ASSERT_TRUE(ledger_->UpsertWorkspace("acme", 100, Region::kGlobal).ok());
  ASSERT_TRUE(ledger_->SetAlerts("acme", {{"half", AlertWhen::kUsedPercent, 50}, {"low", AlertWhen::kRemaining, 20}}).ok());
  ReserveResult h = ledger_->Reserve(ReserveRequest{Text("acme", 85), 0});
  ASSERT_TRUE(h.status.ok());
  EXPECT_EQ(NewEvents("acme"), Events{"alert low fired"});
  ASSERT_TRUE(ledger_->Release(h.reservation_id).status.ok());
  EXPECT_EQ(NewEvents("acme"), Events{"alert low recovered"});
  h = ledger_->Reserve(ReserveRequest{Text("acme", 60), 0});
  EXPECT_EQ(NewEvents("acme"), Events{});
  ASSERT_TRUE(ledger_->Commit(h.reservation_id).status.ok());   // used 60
  EXPECT_EQ(NewEvents("acme"), Events{"alert half fired"});
}

TEST_F(AlertsTest, DepletedIsBuiltInForCappedWorkspacesOnly) {
  ASSERT_TRUE(ledger_->UpsertWorkspace("acme", 10, Region::kGlobal).ok());
  ASSERT_TRUE(ledger_->UpsertWorkspace("free", kUnlimited, Region::kGlobal).ok());
  ASSERT_TRUE(ledger_->SetAlerts("free", {{"pct", AlertWhen::kUsedPercent, 1}, {"rem", AlertWhen::kRemaining, kMaxLimit}}).ok());
  Charge("free", 1000);
  EXPECT_EQ(NewEvents("free"), Events{});   // unlimited: neither depleted nor any alert
  const uint64_t c = Charge("acme", 10);
  EXPECT_EQ(NewEvents("acme"), Events{"depleted fired"});
  EXPECT_EQ(ledger_->Charge(Text("acme", 1)).status.code(), Code::kInsufficientGenerations);
  EXPECT_EQ(NewEvents("acme"), Events{});
  Refund(c);
  EXPECT_EQ(NewEvents("acme"), Events{"depleted recovered"});
  Charge("acme", 10);
  EXPECT_EQ(NewEvents("acme"), Events{"depleted fired"});
  ASSERT_TRUE(ledger_->TopUp("acme", 5).ok());
  EXPECT_EQ(NewEvents("acme"), Events{"depleted recovered"});
  const LedgerEvent last = EventsOf("acme").back();
  EXPECT_FALSE(last.fired);
  EXPECT_EQ(last.remaining, 5u);
  ASSERT_TRUE(ledger_->UpsertWorkspace("acme", 10, Region::kGlobal).ok());   // nothing crosses
  EXPECT_EQ(NewEvents("acme"), Events{});
}

TEST_F(AlertsTest, GrantsAndHigherLimitsRecoverUsedPercent) {
  ASSERT_TRUE(ledger_->UpsertWorkspace("acme", 100, Region::kGlobal).ok());
  ASSERT_TRUE(ledger_->SetAlerts("acme", {{"80pct", AlertWhen::kUsedPercent, 80}}).ok());
  Charge("acme", 80);
  EXPECT_EQ(NewEvents("acme"), Events{"alert 80pct fired"});
  GrantRequest g;
  g.amount = 50;   // allowance 150: 80 is 53%
  ASSERT_TRUE(ledger_->AddGrant("acme", g).ok());
  EXPECT_EQ(NewEvents("acme"), Events{"alert 80pct recovered"});
  Charge("acme", 40);   // 120 of 150 = 80%, 20 of it drawn from the grant: the allowance stays 150
  EXPECT_EQ(NewEvents("acme"), Events{"alert 80pct fired"});
  ASSERT_TRUE(ledger_->UpsertWorkspace("acme", 200, Region::kGlobal).ok());   // 120 of 250
  EXPECT_EQ(NewEvents("acme"), Events{"alert 80pct recovered"});
}

TEST_F(AlertsTest, AnAlertWhoseConditionAlreadyHoldsFiresWhenSet) {
  ASSERT_TRUE(ledger_->UpsertWorkspace("acme", 100, Region::kGlobal).ok());
  Charge("acme", 90);
  auto set = ledger_->SetAlerts("acme", {{"80pct", AlertWhen::kUsedPercent, 80}, {"95pct", AlertWhen::kUsedPercent, 95}});
  ASSERT_TRUE(set.ok());
  ASSERT_EQ(set->size(), 2u);
  EXPECT_TRUE((*set)[0].fired);
  EXPECT_FALSE((*set)[1].fired);
  EXPECT_EQ(NewEvents("acme"), Events{"alert 80pct fired"});
  // Replacing the set re-arms: the same alert fires again once (a new configuration).
  ASSERT_TRUE(ledger_->SetAlerts("acme", {{"80pct", AlertWhen::kUsedPercent, 80}}).ok());
  EXPECT_EQ(NewEvents("acme"), Events{"alert 80pct fired"});
  ASSERT_TRUE(ledger_->SetAlerts("acme", {}).ok());
  EXPECT_TRUE(ledger_->GetAlerts("acme")->empty());
  Charge("acme", 5);
  EXPECT_EQ(NewEvents("acme"), Events{});
}

TEST_F(AlertsTest, BadConfigurationsAreRefusedAndChangeNothing) {
  ASSERT_TRUE(ledger_->UpsertWorkspace("acme", 100, Region::kGlobal).ok());
  ASSERT_TRUE(ledger_->SetAlerts("acme", {{"keep", AlertWhen::kRemaining, 5}}).ok());
  std::vector<AlertSpec> many;
  for (int i = 0; i < 17; ++i) many.push_back({"a" + std::to_string(i), AlertWhen::kRemaining, 1});
  const std::vector<std::vector<AlertSpec>> bad = {
      many,
      {{"", AlertWhen::kRemaining, 1}},
      {{"sp ace", AlertWhen::kRemaining, 1}},
      {{"at@sign", AlertWhen::kRemaining, 1}},
      {{std::string(65, 'x'), AlertWhen::kRemaining, 1}},
      {{"dup", AlertWhen::kRemaining, 1}, {"dup", AlertWhen::kUsedPercent, 50}},
      {{"zero", AlertWhen::kUsedPercent, 0}},
      {{"over", AlertWhen::kUsedPercent, 101}},
      {{"huge", AlertWhen::kRemaining, kMaxLimit + 1}},
      {{"kind", AlertWhen(7), 1}},
  };
  for (const auto& b : bad) {
    EXPECT_EQ(ledger_->SetAlerts("acme", b).status().code(), Code::kInvalidArgument) << (b.empty() ? "" : b[0].name);
  }
  EXPECT_EQ(States("acme"), (std::map<std::string, bool>{{"keep", false}}));
  many.pop_back();
  EXPECT_TRUE(ledger_->SetAlerts("acme", many).ok());   // 16 is allowed
  EXPECT_TRUE(ledger_->SetAlerts("acme", {{std::string(64, 'x'), AlertWhen::kRemaining, kMaxLimit}}).ok());
  EXPECT_EQ(ledger_->SetAlerts("nobody", {}).status().code(), Code::kUnknownWorkspace);
  EXPECT_EQ(ledger_->GetAlerts("nobody").status().code(), Code::kUnknownWorkspace);
  EXPECT_EQ(ledger_->GetAlerts("bad id").status().code(), Code::kInvalidId);
}

TEST_F(AlertsTest, PeriodResetAtRolloverAndReset) {
  WorkspaceUpdate u;
  u.limit = 100;
  u.interval = Interval::kMonth;
  u.anchor_ms = T("2026-01-01T00:00:00Z");
  ASSERT_TRUE(ledger_->UpdateWorkspace("acme", u).ok());
  ASSERT_TRUE(ledger_->SetAlerts("acme", {{"80pct", AlertWhen::kUsedPercent, 80}, {"tiny", AlertWhen::kRemaining, 100}}).ok());
  EXPECT_EQ(NewEvents("acme"), Events{"alert tiny fired"});   // remaining 100 <= 100 from the start
  Charge("acme", 100);
  EXPECT_EQ(NewEvents("acme"), (Events{"depleted fired", "alert 80pct fired"}));
  // The month ends; the next operation applies the rollover first (its own record), then charges.
  clock_.Set(T("2026-02-03T08:00:00Z"));
  Charge("acme", 10);
  EXPECT_EQ(NewEvents("acme"), (Events{"period_reset", "depleted recovered", "alert 80pct recovered"}));
  const std::vector<LedgerEvent> all = EventsOf("acme");
  const LedgerEvent& reset = all[all.size() - 3];
  EXPECT_EQ(reset.kind, EventKind::kPeriodReset);
  EXPECT_EQ(reset.period, 2u);
  EXPECT_EQ(reset.used, 0u);
  EXPECT_EQ(reset.at_ms, T("2026-02-01T00:00:00Z"));   // the boundary: what the rollover record carries
  // `tiny` still holds in the new period (remaining 90 <= 100): it stays fired, no new event.
  EXPECT_EQ(States("acme"), (std::map<std::string, bool>{{"80pct", false}, {"tiny", true}}));
  // A rollover nobody triggers: the sweeper applies it.
  clock_.Set(T("2026-03-01T00:00:01Z"));
  ledger_->ExpireReservations();
  EXPECT_EQ(NewEvents("acme"), Events{"period_reset"});
  ASSERT_TRUE(ledger_->ResetPeriod("acme").ok());
  EXPECT_EQ(NewEvents("acme"), Events{"period_reset"});
  EXPECT_EQ(EventsOf("acme").back().period, 4u);
}

TEST_F(AlertsTest, EventIdsAreDensePerShardAndOldOnesArePruned) {
  ASSERT_TRUE(ledger_->UpsertWorkspace("flip", 1, Region::kGlobal).ok());
  for (int i = 0; i < 600; ++i) Refund(Charge("flip", 1));   // 2 events each
  const std::vector<LedgerEvent> evs = EventsOf("flip");
  ASSERT_FALSE(evs.empty());
  const uint32_t shard = uint32_t(evs[0].id & 0xFF);
  std::vector<LedgerEvent> out;
  uint64_t first_kept = 0;
  const uint64_t next = ledger_->ReadEvents(shard, 1, SIZE_MAX, out, &first_kept);
  EXPECT_EQ(next, 1201u);
  EXPECT_EQ(out.size(), 1024u);   // the last kEventsKept
  EXPECT_EQ(first_kept, 1201u - 1024u);
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].id, ((first_kept + i) << 8) | shard);
    EXPECT_EQ(Describe(out[i]), (first_kept + i) % 2 == 1 ? "depleted fired" : "depleted recovered");
  }
  // Paging: from a seq, at most max, returning where to go on.
  out.clear();
  EXPECT_EQ(ledger_->ReadEvents(shard, 1190, 5, out), 1195u);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0].id >> 8, 1190u);
  out.clear();
  EXPECT_EQ(ledger_->ReadEvents(shard, 1201, 5, out), 1201u);
  EXPECT_TRUE(out.empty());
}

// The events of a ledger that lived, of one that replayed its whole log, and of one that loaded
// a snapshot taken midway and replayed the rest, are the same: same order, ids and fields.
TEST_F(AlertsTest, SameEventsAfterReplayAndAfterSnapshotPlusReplay) {
  LedgerLog::EnableLog(*ledger_);
  auto scenario = [&](int round) {
    for (int w = 0; w < 12; ++w) {
      const std::string ws = "ws" + std::to_string(w);
      if (round == 0) {
        ASSERT_TRUE(ledger_->UpsertWorkspace(ws, 40 + w, Region::kGlobal).ok());
        ASSERT_TRUE(ledger_->SetAlerts(ws, {{"half", AlertWhen::kUsedPercent, 50}, {"low", AlertWhen::kRemaining, 5}}).ok());
      }
      std::vector<uint64_t> charges;
      for (int i = 0; i < 8; ++i) {
        clock_.Advance(10);
        ChargeResult r = ledger_->Charge(Text(ws, 3 + uint64_t(i % 3)));
        if (r.status.ok()) charges.push_back(r.charge_id);
      }
      ReserveResult h = ledger_->Reserve(ReserveRequest{Text(ws, 2), 1000});
      if (h.status.ok() && w % 2 == 0) {
        ASSERT_TRUE(ledger_->Release(h.reservation_id).status.ok());
      }
      for (size_t i = 0; i < charges.size(); i += 2) Refund(charges[i]);
      if (w % 3 == 0) {
        ASSERT_TRUE(ledger_->TopUp(ws, 7).ok());
      }
      if (w % 4 == 1) {
        ASSERT_TRUE(ledger_->ResetPeriod(ws).ok());
      }
    }
    clock_.Advance(5000);
    ledger_->ExpireReservations();   // the holds left open expire (type 10)
  };
  std::vector<std::pair<uint8_t, std::string>> first, rest;
  auto drain = [&](auto& into) {
    ASSERT_TRUE(LedgerLog::DrainLog(*ledger_, [&](uint8_t type, std::string_view p) { into.emplace_back(type, std::string(p)); }).ok());
  };
  scenario(0);
  drain(first);
  struct Snap {
    uint64_t record_no = 0;
    std::string payload;
  };
  std::vector<Snap> snaps(Ledger::ShardCount());
  for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
    // Block 2 (alerts and outbox) is part of the shard's payload.
    ASSERT_TRUE(LedgerLog::SnapshotShard(*ledger_, i, snaps[i].payload, &snaps[i].record_no).ok());
  }
  scenario(1);
  scenario(2);
  drain(rest);
  const std::vector<LedgerEvent> live = AllEvents(*ledger_);
  ASSERT_GT(live.size(), 50u);

  auto replayed = Make();
  for (const auto* part : {&first, &rest}) {
    for (const auto& [type, payload] : *part) ASSERT_TRUE(LedgerLog::ApplyLogRecord(*replayed, type, payload).ok());
  }
  EXPECT_EQ(AllEvents(*replayed), live);

  auto loaded = Make();
  for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
    ASSERT_TRUE(LedgerLog::LoadShardSection(*loaded, i, snaps[i].record_no, snaps[i].payload).ok());
  }
  for (const auto& [type, payload] : rest) ASSERT_TRUE(LedgerLog::ApplyLogRecord(*loaded, type, payload).ok());
  EXPECT_EQ(AllEvents(*loaded), live);

  for (int w = 0; w < 12; ++w) {
    const std::string ws = "ws" + std::to_string(w);
    EXPECT_EQ(States(ws, replayed.get()), States(ws));
    EXPECT_EQ(States(ws, loaded.get()), States(ws));
  }
  // Ids are dense per shard, from 1.
  std::map<uint32_t, uint64_t> next_seq;
  for (const LedgerEvent& e : live) {
    const uint32_t shard = uint32_t(e.id & 0xFF);
    auto [it, fresh] = next_seq.emplace(shard, 1);
    EXPECT_EQ(e.id >> 8, it->second) << "shard " << shard;
    it->second = (e.id >> 8) + 1;
  }
}

// Random changes of every kind (charges, holds, refunds, top-ups, grants, resets, limit changes,
// rollovers by the clock and by the sweeper): after each, every alert's state is its condition
// and the last event of each alert and of `depleted` says the same. A change that skipped the
// evaluation would leave a state behind. Then the whole log replays to the same events.
TEST_F(AlertsTest, AfterAnyChangeTheStatesMatchTheConditions) {
  LedgerLog::EnableLog(*ledger_);
  std::mt19937 rng(15);
  const std::vector<std::string> names = {"a", "b", "c"};
  for (const std::string& ws : names) {
    WorkspaceUpdate u;
    u.limit = 60;
    u.interval = Interval::kDay;
    ASSERT_TRUE(ledger_->UpdateWorkspace(ws, u).ok());
    ASSERT_TRUE(ledger_->SetAlerts(ws, {{"r0", AlertWhen::kRemaining, 0}, {"r10", AlertWhen::kRemaining, 10},
                                        {"r30", AlertWhen::kRemaining, 30}}).ok());
  }
  std::vector<uint64_t> charges, holds;
  std::vector<std::pair<std::string, uint32_t>> grants;
  for (int step = 0; step < 3000; ++step) {
    const std::string& ws = names[rng() % names.size()];
    switch (rng() % 12) {
      case 0: case 1: case 2: {
        ChargeResult r = ledger_->Charge(Text(ws, 1 + rng() % 12));
        if (r.status.ok()) charges.push_back(r.charge_id);
        break;
      }
      case 3: {
        ReserveResult r = ledger_->Reserve(ReserveRequest{Text(ws, 1 + rng() % 12), 1000 + rng() % 60000});
        if (r.status.ok()) holds.push_back(r.reservation_id);
        break;
      }
      case 4:
        if (!holds.empty()) {
          const size_t i = rng() % holds.size();
          if (rng() % 2) {
            (void)ledger_->Commit(holds[i]);
          } else {
            (void)ledger_->Release(holds[i]);
          }
          holds.erase(holds.begin() + long(i));
        }
        break;
      case 5:
        if (!charges.empty()) {
          const size_t i = rng() % charges.size();
          (void)ledger_->Refund(charges[i]);
          charges.erase(charges.begin() + long(i));
        }
        break;
      case 6:
        (void)ledger_->TopUp(ws, 1 + rng() % 20);
        break;
      case 7: {
        GrantRequest g;
        g.amount = 1 + rng() % 30;
        g.priority = uint16_t(rng() % 200);
        g.expires_at_ms = rng() % 2 ? 0 : clock_.NowMs() + 1 + rng() % 3'600'000;
        auto r = ledger_->AddGrant(ws, g);
        if (r.ok()) grants.emplace_back(ws, r->grant);
        break;
      }
      case 8:
        if (!grants.empty()) {
          const size_t i = rng() % grants.size();
          (void)ledger_->VoidGrant(grants[i].first, grants[i].second);
          grants.erase(grants.begin() + long(i));
        }
        break;
      case 9:
        if (rng() % 4 == 0) {
          ASSERT_TRUE(ledger_->ResetPeriod(ws).ok());
        } else {
          WorkspaceUpdate u;
          u.limit = 20 + rng() % 80;
          u.limit_now = rng() % 2;
          ASSERT_TRUE(ledger_->UpdateWorkspace(ws, u).ok());
        }
        break;
      case 10:
        clock_.Advance(rng() % 1'800'000);   // holds and grants expire, days roll over
        break;
      default:
        ledger_->ExpireReservations();
        break;
    }
    for (const std::string& w : names) {
      const WorkspaceInfo info = *ledger_->GetWorkspace(w);
      auto alerts = ledger_->GetAlerts(w);
      ASSERT_TRUE(alerts.ok());
      std::map<std::string, bool> last;   // the state the latest event of each says
      for (const LedgerEvent& e : EventsOf(w)) {
        if (e.kind == EventKind::kPeriodReset) continue;
        const std::string key = e.kind == EventKind::kAlert ? e.alert : "depleted";
        auto it = last.find(key);
        ASSERT_TRUE(it == last.end() ? e.fired : it->second != e.fired) << "step " << step << ": " << w << " " << key
                                                                        << " emitted the same state twice";
        last[key] = e.fired;
      }
      for (const AlertInfo& a : *alerts) {
        ASSERT_EQ(a.fired, info.remaining <= a.at) << "step " << step << ": " << w << " " << a.name;
        ASSERT_EQ(last.count(a.name) ? last[a.name] : false, a.fired) << "step " << step << ": " << w << " " << a.name;
      }
      ASSERT_EQ(last.count("depleted") ? last["depleted"] : false, info.remaining == 0) << "step " << step << ": " << w;
    }
  }
  ASSERT_GT(AllEvents(*ledger_).size(), 150u);   // 238 with this seed
  std::vector<std::pair<uint8_t, std::string>> log;
  ASSERT_TRUE(LedgerLog::DrainLog(*ledger_, [&](uint8_t type, std::string_view p) { log.emplace_back(type, std::string(p)); }).ok());
  auto replayed = Make();
  for (const auto& [type, payload] : log) ASSERT_TRUE(LedgerLog::ApplyLogRecord(*replayed, type, payload).ok());
  EXPECT_EQ(AllEvents(*replayed), AllEvents(*ledger_));
}

TEST_F(AlertsTest, AlertsBlockRejectsDamage) {
  ASSERT_TRUE(ledger_->UpsertWorkspace("acme", 10, Region::kGlobal).ok());
  ASSERT_TRUE(ledger_->SetAlerts("acme", {{"half", AlertWhen::kUsedPercent, 50}}).ok());
  Charge("acme", 10);
  const uint32_t shard = uint32_t(EventsOf("acme").at(0).id & 0xFF);
  std::string block, payload;
  uint64_t record_no = 0;
  ASSERT_TRUE(LedgerLog::SnapshotShard(*ledger_, shard, payload, &record_no).ok());
  ASSERT_TRUE(LedgerLog::SnapshotAlerts(*ledger_, shard, block).ok());
  auto b = Make();
  ASSERT_TRUE(LedgerLog::LoadShardSection(*b, shard, record_no, payload).ok());
  EXPECT_EQ(AllEvents(*b), AllEvents(*ledger_));   // the snapshot carries them (block 2)
  EXPECT_EQ(States("acme", b.get()), States("acme"));
  // The block alone: every truncation and a trailing byte are refused, and change nothing.
  for (size_t n = 0; n < block.size(); ++n) {
    EXPECT_EQ(LedgerLog::LoadAlerts(*b, shard, block.substr(0, n)).code(), Code::kCorruption) << n;
  }
  EXPECT_EQ(LedgerLog::LoadAlerts(*b, shard, block + "x").code(), Code::kCorruption);
  EXPECT_EQ(AllEvents(*b), AllEvents(*ledger_));
  // A damaged snapshot payload (the block inside it truncated) is refused as a whole.
  auto c = Make();
  EXPECT_EQ(LedgerLog::LoadShardSection(*c, shard, record_no, payload.substr(0, payload.size() - 3)).code(),
            Code::kCorruption);
  EXPECT_TRUE(AllEvents(*c).empty());
}

// The outbox ceiling (LedgerOptions::event_outbox_bytes, docs/webhooks.md): events a webhook still
// needs are kept past the last 1,024 of a shard, until the outboxes' total passes the ceiling;
// then the oldest go.
TEST_F(AlertsTest, OutboxKeepsWhatAWebhookNeedsUpToTheCeiling) {
  for (uint64_t ceiling : {uint64_t(1) << 40, uint64_t(1) << 10}) {
    LedgerOptions opt;
    opt.clock = &clock_;
    opt.event_outbox_bytes = ceiling;
    Ledger l(Catalog::Default(), opt);
    ASSERT_TRUE(l.UpsertWorkspace("acme", 100, Region::kGlobal).ok());
    ASSERT_TRUE(l.SetAlerts("acme", {{"low", AlertWhen::kRemaining, 50}}).ok());
    uint32_t shard = 0;
    for (; shard < Ledger::ShardCount(); ++shard) {
      std::vector<LedgerEvent> none;
      l.ReadEvents(shard, 0, 1, none);
      l.KeepEventsFrom(shard, 1);   // a webhook that has delivered nothing yet, on every shard
    }
    // 700 rounds of fired + recovered: 1,400 events on acme's shard.
    for (int i = 0; i < 700; ++i) Refund(Charge("acme", 60, &l), &l);
    std::vector<LedgerEvent> evs;
    uint64_t first_kept = 0, next = 0;
    for (shard = 0; shard < Ledger::ShardCount(); ++shard) {
      evs.clear();
      next = l.ReadEvents(shard, 0, SIZE_MAX, evs, &first_kept);
      if (!evs.empty()) break;
    }
    ASSERT_EQ(next, 1401u);
    if (ceiling == (uint64_t(1) << 40)) {
      EXPECT_EQ(first_kept, 1u) << "every event a webhook needs is kept below the ceiling";
      EXPECT_EQ(evs.size(), 1400u);
    } else {
      EXPECT_EQ(evs.size(), 1024u) << "past the ceiling only the last 1,024 stay";
      EXPECT_EQ(first_kept, 1401u - 1024u);
    }
  }
}

}  // namespace
}  // namespace genledger
