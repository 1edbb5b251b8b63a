#include "simulation.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "genledger/catalog.h"

namespace genledger::sim {
namespace {

constexpr int kWorkspaces = 6;
constexpr int kUsers = 5;
// Idempotency ids retried from earlier cycles must still be remembered: well inside the window
// (24 h by default) and the table's capacity.
constexpr uint64_t kRetryAgeMs = 12ull * 60 * 60 * 1000;
constexpr size_t kOlderIdsKept = 2000;

// The default catalog with text messages of gpt-4o at 2 instead of 1: the load switches between
// the two (WAL record type 20), so charges are priced under several versions.
std::shared_ptr<const Catalog> Repriced() {
  static const std::shared_ptr<const Catalog> repriced = [] {
    std::string json = Catalog::Default()->ToJson();
    const size_t item = json.find(R"({"id":"openai-gpt-4o",)");
    const size_t rate = json.find(R"("rate":"1")", item);
    json.replace(rate, 10, R"("rate":"2")");
    auto c = Catalog::FromJson(json);
    if (!c.ok()) std::abort();
    return *c;
  }();
  return repriced;
}

std::string Ws(uint64_t i) { return "w" + std::to_string(i); }
std::string User(uint64_t i) { return "u" + std::to_string(i); }

}  // namespace

// `cuts`: power cuts made when the failure showed (recovery n checks cut n-1's outcome).
Status Simulation::Fail(uint32_t cuts, const std::string& what) const {
  return Status(Code::kCorruption, "SIMULATION FAILED: seed " + std::to_string(seed_) + ", after " +
                                       std::to_string(cuts) + " power cut(s): " + what +
                                       " (replay: tools/simulate.sh --seed " + std::to_string(seed_) +
                                       " --cuts " + std::to_string(std::max<uint32_t>(cuts, 1)) + ")");
}

ChargeRequest Simulation::Text(const std::string& ws, const std::string& user, uint64_t n,
                               const std::string& id) const {
  ChargeRequest r{ws, user, ledger_->CurrentCatalog()->Find("gpt-4o"), {}, id};
  r.usage.quantity = n;
  return r;
}

std::string Simulation::Coarse() const {
  std::string out;
  for (int i = 0; i < kWorkspaces; ++i) {
    auto w = ledger_->GetWorkspace(Ws(i));
    if (!w.ok()) continue;
    out += Ws(i) + "{used " + std::to_string(w->used) + " res " + std::to_string(w->reserved) + " lim " +
           std::to_string(w->limit) + " top " + std::to_string(w->topup) + " granted " +
           std::to_string(w->granted_remaining) + " over " + std::to_string(w->overage) + " per " + std::to_string(w->period) +
           " users " + std::to_string(w->users) + "} ";
  }
  auto t = ledger_->Totals();
  out += "holds " + std::to_string(t.open_reservations) + " idem " + std::to_string(t.idempotency_entries);
  return out;
}

uint64_t Simulation::Digest() const {
  // The state digest leaves the catalog out; the version and the rate the load charges at are
  // what recovery must restore of it.
  uint64_t version = 0;
  const std::shared_ptr<const Catalog> c = ledger_->CurrentCatalog(&version);
  return ledger_->StateDigest() ^ (version * 0x9E3779B97F4A7C15ull) ^ (uint64_t(c->Find("gpt-4o")->rate_milli) << 48);
}

void Simulation::Record(const std::string& name) {
  if (debug_) {
    coarse_.push_back(Coarse());
    op_names_.push_back(name);
  }
  digests_.push_back(Digest());
  ++stats_.ops;
}

Status Simulation::Run(uint32_t cuts) {
  for (uint32_t cut = 0; cut < cuts; ++cut) {
    if (Status st = Cycle(cut); !st.ok()) return st;
  }
  // Recover once more and check the last cut, then shut down cleanly.
  if (Status st = Recover(cuts); !st.ok()) return st;
  dur_.reset();
  ledger_.reset();
  return Status();
}

Status Simulation::Recover(uint32_t cut) {
  LedgerOptions lo;
  lo.clock = &clock_;
  ledger_ = std::make_unique<Ledger>(Catalog::Default(), lo);
  DurabilityOptions o;
  o.data_dir = dir_;
  o.sync = SyncMode::kGroup;
  o.fs = &fs_;
  o.snapshot_interval_s = 0;   // snapshots are taken by the load, at random moments
  o.segment_bytes = 8192;      // rotations (and their crash windows) every few dozen records
  RecoveryReport rep;
  auto d = Durability::Open(*ledger_, o, &rep);
  if (!d.ok()) return Fail(cut, "recovery failed: " + d.status().ToString());
  dur_ = std::move(*d);
  if (Status st = ledger_->CheckInvariants(); !st.ok()) return Fail(cut, "invariant broken after recovery: " + st.ToString());
  if (rep.torn_tail) ++stats_.torn_tails;
  if (!rep.snapshot_path.empty()) ++stats_.recovered_from_snapshot;
  return CheckRecovered(cut, rep);
}

// The recovered state must be the live state after some op j of the cut cycle with j >= the
// last acknowledged op (the WAL holds one client's records in the order it made them, so what
// survives is a prefix of its ops). Then every idempotent charge of that cycle is retried: one
// the prefix contains must be answered as a replay with its original charge id (never debited
// twice), one it does not must not be.
Status Simulation::CheckRecovered(uint32_t cut, const RecoveryReport& rep) {
  const uint64_t recovered = Digest();
  std::vector<IdemCharge> prev = std::move(applied_idem_);
  applied_idem_.clear();
  size_t jmin = 0, jmax = 0;
  if (!digests_.empty()) {
    bool found = false;
    for (size_t j = acked_; j < digests_.size(); ++j) {
      if (digests_[j] != recovered) continue;
      if (!found) jmin = j;
      jmax = j;
      found = true;
    }
    if (!found) {
      if (debug_) {
        std::string d = "\nrecovered: " + Coarse() + "\n";
        for (size_t j = 0; j < digests_.size(); ++j) {
          d += (j == acked_ ? "ACKED " : "") + std::to_string(j) + (digests_[j] == recovered ? " MATCH " : " ") +
               (j < coarse_.size() ? coarse_[j] : "") + (j < op_names_.size() ? " after " + op_names_[j] : "") + "\n";
        }
        std::fprintf(stderr, "%s", d.c_str());
      }
      return Fail(cut, "the recovered ledger is not the state after any op from the last acknowledged one (" +
                           std::to_string(acked_) + ") to the last one made (" +
                           std::to_string(digests_.size() - 1) + "): an acknowledged op was lost or an op applied twice; " +
                           rep.Summary());
    }
    stats_.acknowledged += acked_;
    stats_.in_flight_applied += jmin - acked_;
    stats_.in_flight_lost += digests_.size() - 1 - jmax;
  }
  digests_.assign(1, recovered);
  coarse_.clear();
  op_names_.assign(1, "recovery");
  if (debug_) coarse_.push_back(Coarse());
  acked_ = 0;

  // Retries as the first ops of the new cycle: they are part of its load too.
  for (const IdemCharge& c : prev) {
    if (c.op > jmin && c.op <= jmax) continue;   // ambiguous (cannot happen: a charge changes the digest)
    const bool contained = c.op <= jmin;
    const size_t op = digests_.size();
    ChargeResult r = ledger_->Charge(Text(c.ws, c.user, c.quantity, c.id));
    Record("check retry " + c.id);
    ++stats_.retries_checked;
    if (contained && (!r.status.ok() || !r.replayed || r.charge_id != c.charge_id)) {
      return Fail(cut, "retry of idempotent charge " + c.id + " (op " + std::to_string(c.op) +
                           ", in the recovered state) was not replayed as charge " +
                           std::to_string(c.charge_id) + ": " + r.status.ToString() +
                           (r.replayed ? " replayed as " + std::to_string(r.charge_id) : " applied again"));
    }
    if (!contained && r.replayed) {
      return Fail(cut, "retry of idempotent charge " + c.id + " (op " + std::to_string(c.op) +
                           ", not in the recovered state) was answered as a replay");
    }
    if (contained) {
      older_idem_.push_back(c);
    } else if (r.status.ok()) {
      IdemCharge again = c;
      again.charge_id = r.charge_id;
      again.at_ms = clock_.NowMs();
      again.op = op;
      applied_idem_.push_back(std::move(again));
    }
  }
  if (older_idem_.size() > kOlderIdsKept) {
    older_idem_.erase(older_idem_.begin(), older_idem_.end() - kOlderIdsKept);
  }
  // A few acknowledged in earlier cycles, still inside their window.
  for (int k = 0; k < 4 && !older_idem_.empty(); ++k) {
    const IdemCharge& c = older_idem_[Pick(older_idem_.size())];
    if (clock_.NowMs() - c.at_ms > kRetryAgeMs) continue;
    ChargeResult r = ledger_->Charge(Text(c.ws, c.user, c.quantity, c.id));
    Record("check retry " + c.id);
    ++stats_.retries_checked;
    if (!r.replayed || r.charge_id != c.charge_id) {
      return Fail(cut, "retry of idempotent charge " + c.id + ", acknowledged before an earlier cut, was not replayed: " +
                           r.status.ToString());
    }
  }
  return Status();
}

std::string Simulation::Op() {
  const uint64_t kind = Pick(100);
  const std::string ws = Ws(Pick(kWorkspaces)), user = User(Pick(kUsers));
  const size_t op = digests_.size();
  std::string desc;
  if (kind < 20) {
    ChargeResult r = ledger_->Charge(Text(ws, user, 1 + Pick(5), {}));
    if (r.status.ok()) charge_ids_.push_back(r.charge_id);
    desc = "charge " + ws + "/" + user + " -> " + r.status.ToString() + " id " + std::to_string(r.charge_id) + " cost " + std::to_string(r.cost);
  } else if (kind < 40) {
    const std::string id = "s" + std::to_string(seed_) + "-" + std::to_string(next_id_++);
    const uint64_t qty = 1 + Pick(5);
    ChargeResult r = ledger_->Charge(Text(ws, user, qty, id));
    desc = "idem charge " + id + " " + ws + "/" + user + " -> " + r.status.ToString() + " id " + std::to_string(r.charge_id);
    if (r.status.ok() && !r.replayed) {
      charge_ids_.push_back(r.charge_id);
      applied_idem_.push_back(IdemCharge{ws, user, id, qty, r.charge_id, clock_.NowMs(), op});
    }
  } else if (kind < 48) {
    // An idempotent retry of a charge the live ledger applied: always a replay while live.
    const bool recent = older_idem_.empty() || (!applied_idem_.empty() && Pick(2) == 0);
    if (recent && applied_idem_.empty()) return "skip";
    const IdemCharge& c = recent ? applied_idem_[Pick(applied_idem_.size())] : older_idem_[Pick(older_idem_.size())];
    if (clock_.NowMs() - c.at_ms > kRetryAgeMs) return "skip";
    ChargeResult r = ledger_->Charge(Text(c.ws, c.user, c.quantity, c.id));
    desc = "retry " + c.id + " -> replayed " + std::to_string(r.replayed);
    if (!r.replayed || r.charge_id != c.charge_id) {
      live_failure_ = "live retry of " + c.id + " was not replayed: " + r.status.ToString();
    }
  } else if (kind < 57) {
    ReserveResult r = ledger_->Reserve(ReserveRequest{Text(ws, user, 1 + Pick(8), {}), 1000 + Pick(300'000)});
    if (r.status.ok()) reservation_ids_.push_back(r.reservation_id);
    desc = "reserve " + ws + "/" + user + " -> " + r.status.ToString() + " id " + std::to_string(r.reservation_id) + " held " + std::to_string(r.held);
  } else if (kind < 60) {
    desc = SideOp(kind - 57, ws);
  } else if (kind < 68) {
    if (reservation_ids_.empty()) return "skip";
    std::optional<Usage> actual;
    if (Pick(2) == 0) {
      actual = Usage{};
      actual->quantity = 1 + Pick(8);
    }
    const uint64_t id = reservation_ids_[Pick(reservation_ids_.size())];
    CommitResult r = ledger_->Commit(id, actual);
    if (r.status.ok()) charge_ids_.push_back(r.charge_id);
    desc = "commit " + std::to_string(id) + " -> " + r.status.ToString() + " cost " + std::to_string(r.cost) + " charge " + std::to_string(r.charge_id);
  } else if (kind < 73) {
    if (reservation_ids_.empty()) return "skip";
    const uint64_t id = reservation_ids_[Pick(reservation_ids_.size())];
    desc = "release " + std::to_string(id) + " -> " + ledger_->Release(id).status.ToString();
  } else if (kind < 79) {
    if (charge_ids_.empty()) return "skip";
    const uint64_t id = charge_ids_[Pick(charge_ids_.size())];
    // Refunding a charge drawn from a grant or beyond the allowance (type 19) shows as grants
    // or overage given back.
    // or overage given back while used falls (ForEachWorkspace reads without applying anything).
    const SubscriptionSums before = Sums();
    RefundResult r = ledger_->Refund(id);
    const SubscriptionSums after = Sums();
    if (r.status.ok() && before.periods == after.periods && after.used < before.used &&
        (after.granted > before.granted || after.overage < before.overage)) {
      ++stats_.source_refunds;
    }
    desc = "refund " + std::to_string(id) + " -> " + r.status.ToString() + " " + std::to_string(r.refunded);
  } else if (kind < 81) {
    // An admin update is one record (type 1, 2 or, when the subscription settings change, 15
    // carrying the limit and region too), so cuts may land anywhere around it.
    static constexpr uint64_t kLimits[] = {kUnlimited, 50, 200, 1000, 5000};
    desc = "upsert " + ws + " -> " + ledger_->UpsertWorkspace(ws, kLimits[Pick(5)], Region::kGlobal).status().ToString();
  } else if (kind < 83) {
    auto r = ledger_->UpdateWorkspace(ws, PlanChange());
    stats_.plan_changes += r.ok() ? 1 : 0;
    desc = "plan " + ws + " -> " + r.status().ToString();
  } else if (kind < 85) {
    desc = "topup " + ws + " -> " + ledger_->TopUp(ws, 1 + Pick(100)).status().ToString();
  } else if (kind < 88) {
    // Grants (type 17): promos that expire within minutes of the clock (type 18 on expiry),
    // packs that never do; charges drawn from them are refunded by type 19.
    GrantRequest g;
    g.amount = 1 + Pick(100);
    g.priority = uint16_t(Pick(3) * 100);
    g.expires_at_ms = Pick(3) == 0 ? 0 : clock_.NowMs() + 1000 + Pick(180'000);
    g.source = Pick(2) == 0 ? GrantSource::kPromo : GrantSource::kTopup;
    const std::string id = Pick(4) == 0 ? "g" + std::to_string(seed_) + "-" + std::to_string(next_id_++) : std::string();
    g.idempotency_id = id;
    auto r = ledger_->AddGrant(ws, g);
    stats_.grants += r.ok() && !r->replayed ? 1 : 0;
    desc = "grant " + ws + " " + std::to_string(g.amount) + " -> " + r.status().ToString() +
           (r.ok() ? " gr_" + std::to_string(r->grant) : std::string());
  } else if (kind < 89) {
    uint32_t n = uint32_t(1 + Pick(24));
    if (auto gs = ledger_->ListGrants(ws); gs.ok() && gs->size() > 1 && Pick(4) != 0) n = (*gs)[1 + Pick(gs->size() - 1)].grant;
    auto r = ledger_->VoidGrant(ws, n);
    stats_.voids += r.ok() ? 1 : 0;
    desc = "void " + ws + " gr_" + std::to_string(n) + " -> " + r.status().ToString();
  } else if (kind < 91) {
    static constexpr uint64_t kCaps[] = {kUnlimited, 5, 20, 100};
    desc = "user limit " + ws + "/" + user + " -> " + ledger_->SetUserLimit(ws, user, kCaps[Pick(4)]).status().ToString();
  } else if (kind < 93) {
    desc = "reset " + ws + " -> " + ledger_->ResetPeriod(ws).status().ToString();
  } else if (kind < 97) {
    // Expiry releases holds shard by shard, one record each: not atomic, so a cut inside it
    // leaves a state no single op boundary had. Cuts are suspended until it is durable (each
    // release record is the same as Release's, which cuts do hit).
    if (fs_.power_off()) return "skip";
    rearm_cut_ = fs_.DisarmCut();
    clock_.Advance(1000 + Pick(120'000));
    const uint64_t periods = Sums().periods;   // boundaries passed show after the sweep
    desc = "expire -> " + std::to_string(ledger_->ExpireReservations());
    stats_.rollovers += Sums().periods - periods;
  } else if (kind < 98) {
    const bool repriced = ledger_->CurrentCatalog()->Find("gpt-4o")->rate_milli != 1000;
    Result<uint64_t> v = ledger_->ReplaceCatalog(repriced ? Catalog::Default() : Repriced());
    desc = "catalog -> " + (v.ok() ? "version " + std::to_string(*v) : v.status().ToString());
  } else {
    desc = "read " + ws + " -> " + ledger_->GetWorkspace(ws).status().ToString();
  }
  // Hints only: ids that recovery dropped are refused later, which changes nothing.
  if (charge_ids_.size() > 4096) charge_ids_.erase(charge_ids_.begin(), charge_ids_.begin() + 2048);
  if (reservation_ids_.size() > 4096) reservation_ids_.erase(reservation_ids_.begin(), reservation_ids_.begin() + 2048);
  return desc;
}

// Ledger state besides balances (WAL types 22-27), which recovery must restore exactly like the
// balances (the state digest covers it): 0 sets alerts on `ws` (their events follow its
// changes), 1 mints or revokes a token, 2 adds, deletes or moves a webhook's cursor on a shard
// that has events.
std::string Simulation::SideOp(uint64_t which, const std::string& ws) {
  if (which == 0) {
    std::vector<AlertSpec> alerts(Pick(4));
    for (size_t i = 0; i < alerts.size(); ++i) {
      alerts[i].name = "a" + std::to_string(i);
      alerts[i].when = Pick(2) == 0 ? AlertWhen::kUsedPercent : AlertWhen::kRemaining;
      alerts[i].at = alerts[i].when == AlertWhen::kUsedPercent ? 1 + Pick(100) : Pick(40);
    }
    auto r = ledger_->SetAlerts(ws, alerts);
    stats_.alert_sets += r.ok() ? 1 : 0;
    return "alerts " + ws + " x" + std::to_string(alerts.size()) + " -> " + r.status().ToString();
  }
  if (which == 1) {
    if (!token_ids_.empty() && Pick(3) == 0) {
      const size_t i = Pick(token_ids_.size());
      const uint64_t id = token_ids_[i];
      token_ids_.erase(token_ids_.begin() + i);
      return "revoke tok_" + std::to_string(id) + " -> " + ledger_->RevokeToken(id).ToString();
    }
    TokenSpec spec;
    spec.role = uint8_t(1 + Pick(3));
    spec.name = "sim" + std::to_string(next_id_++);
    spec.scoped = Pick(2) == 0;
    if (spec.scoped) spec.workspaces = {ws};
    spec.expires_at_ms = Pick(2) == 0 ? 0 : clock_.NowMs() + Pick(3'600'000);
    for (uint8_t& b : spec.digest) b = uint8_t(rng_());
    auto r = ledger_->AddToken(spec);
    if (r.ok()) {
      token_ids_.push_back(r->id);
      ++stats_.tokens;
    }
    return "token -> " + r.status().ToString();
  }
  const std::vector<WebhookInfo> hooks = ledger_->ListWebhooks();
  const uint64_t r = Pick(10);
  if (hooks.empty() || (r < 3 && hooks.size() < 32)) {
    WebhookInfo w;
    w.url = "https://hooks.example/" + std::to_string(Pick(1000));
    w.events = uint8_t(1 + Pick(7));
    if (Pick(2) == 0) w.workspaces = std::vector<std::string>{ws};
    w.secret = "secret-" + std::to_string(rng_());
    w.created_ms = clock_.NowMs();
    auto a = ledger_->AddWebhook(w);
    stats_.webhooks += a.ok() ? 1 : 0;
    return "webhook add -> " + a.status().ToString();
  }
  const uint32_t number = hooks[Pick(hooks.size())].number;
  if (r < 4) return "webhook delete wh_" + std::to_string(number) + " -> " + ledger_->DeleteWebhook(number).ToString();
  // A shard one of the workspaces lives in (a charge id ends with its shard), so the cursor
  // moves over events that exist.
  const uint32_t shard = charge_ids_.empty() ? uint32_t(Pick(Ledger::ShardCount()))
                                             : uint32_t(charge_ids_[Pick(charge_ids_.size())] % Ledger::ShardCount());
  const std::vector<WebhookCursor> cursors = ledger_->WebhookCursors(number);
  const uint64_t from = cursors.empty() ? 1 : cursors[shard].next_seq;
  const Status st = ledger_->RecordWebhookProgress(number, shard, from + Pick(4), Pick(3) == 0 ? 1 : 0, Pick(5) == 0 ? 1 : 0);
  stats_.webhook_progress += st.ok() ? 1 : 0;
  return "webhook progress wh_" + std::to_string(number) + " shard " + std::to_string(shard) + " -> " + st.ToString();
}

Simulation::SubscriptionSums Simulation::Sums() const {
  SubscriptionSums s;
  ledger_->ForEachWorkspace([&](const WorkspaceInfo& w) {
    s.periods += w.period;
    s.used += w.used;
    s.granted += w.granted_remaining;
    s.overage += w.overage;
  });
  return s;
}

// A random subscription change (type 15, after type 2): a minute schedule, so that the expiry ops'
// clock steps pass boundaries (type 16), an overage mode, a rollover, or a lower limit that waits
// for the boundary unless "now".
WorkspaceUpdate Simulation::PlanChange() {
  WorkspaceUpdate u;
  switch (Pick(5)) {
    case 0:
      u.interval = Interval::kMinute;
      u.anchor_ms = clock_.NowMs() - Pick(60'000);
      break;
    case 1:
      u.overage_mode = OverageMode(Pick(3));
      u.overage_limit = Pick(2) == 0 ? kUnlimited : Pick(50);
      break;
    case 2:
      u.rollover = RolloverSpec{1 + Pick(100), uint32_t(1 + Pick(3))};   // refused without a schedule
      break;
    case 3:
      u.limit = 20 + Pick(200);
      u.limit_now = Pick(2) == 0;
      break;
    default:
      u.plan_priority = uint16_t(Pick(3) * 100);
      u.interval = Pick(4) == 0 ? Interval::kNone : Interval::kMinute;
      break;
  }
  return u;
}

Status Simulation::Cycle(uint32_t cut) {
  if (Status st = Recover(cut); !st.ok()) return st;
  if (cut == 0) {
    for (int i = 0; i < kWorkspaces; ++i) {
      (void)ledger_->UpsertWorkspace(Ws(i), i == 0 ? kUnlimited : 300, Region::kGlobal);
      Record("create " + Ws(i));
    }
  }
  const uint64_t ops = 20 + Pick(150);
  // Counted in file-system calls from here, over about as many as the last cycle made (a cut
  // beyond this cycle's calls comes at its end, with nothing in flight).
  fs_.CutPowerAtOp(static_cast<int64_t>(Pick(fs_calls_ + fs_calls_ / 8 + 1)));
  const uint64_t calls_before = fs_.ops();
  // Early, so that it usually runs before the cut, and concurrently with the load.
  const uint64_t snapshot_at = Pick(2) == 0 ? Pick(std::min<uint64_t>(ops, 24)) : UINT64_MAX;
  std::atomic<uint64_t> snapshots{0};
  std::thread snapshotter;
  uint64_t batch = 1 + Pick(8);
  for (uint64_t k = 0; k < ops && !fs_.power_off(); ++k) {
    if (k == snapshot_at) {
      ++stats_.snapshots_started;
      snapshotter = std::thread([&] {
        if (dur_->Snapshot().ok()) snapshots.fetch_add(1);
      });
    }
    Record(Op());
    if (rearm_cut_) {
      if (dur_->WaitDurable(dur_->Ticket()).ok()) acked_ = digests_.size() - 1;
      fs_.CutPowerAtOp(*rearm_cut_);
      rearm_cut_.reset();
    }
    if (!live_failure_.empty()) break;
    if (--batch == 0 || k + 1 == ops) {
      const size_t made = digests_.size() - 1;
      if (!dur_->WaitDurable(dur_->Ticket()).ok()) break;   // the power went off
      acked_ = made;
      batch = 1 + Pick(8);
    }
  }
  if (!fs_.power_off()) fs_calls_ = std::max<uint64_t>(16, fs_.ops() - calls_before);   // a whole cycle
  fs_.CutPower();
  if (snapshotter.joinable()) snapshotter.join();
  if (!live_failure_.empty()) return Fail(cut + 1, live_failure_);
  stats_.snapshots += snapshots.load();
  dur_.reset();   // its writes fail now: the disk is gone
  ledger_.reset();
  wal::PowerCutOptions po;
  po.tear_unsynced = Pick(2) == 0;
  po.keep_some_dir_ops = Pick(2) == 0;
  auto applied = fs_.ApplyPowerCut(rng_(), po);
  if (!applied.ok()) return Fail(cut + 1, "applying the power cut: " + applied.status().ToString());
  stats_.bytes_torn_kept += applied->bytes_torn_kept;
  stats_.dir_ops_undone += applied->dir_ops_undone;
  fs_.RestorePower();
  ++stats_.cuts;
  return Status();
}

}  // namespace genledger::sim
