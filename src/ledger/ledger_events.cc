// Derived events: evaluating alerts and the built-in events after each change of a workspace,
// the per-shard outbox, and the alert API (docs/events.md, "Alerts", "Event ids and the outbox").
#include "ledger/ledger_events.h"

#include <algorithm>
#include <mutex>
#include <optional>

#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"

namespace genledger {

using ledger::Shard;
using ledger::Workspace;

namespace ledger {

namespace {

void Append(Shard& s, const Workspace& ws, EventKind kind, bool fired, std::string_view alert, uint64_t at_ms) {
  EventOutbox& o = s.outbox;
  StoredEvent e;
  e.workspace = ws.index;
  e.kind = kind;
  e.fired = fired;
  e.alert.assign(alert);
  e.used = ws.used;
  e.remaining = ws.remaining();
  e.limit = ws.base_limit;
  e.period = ws.period;
  e.rev = ws.rev;
  e.at_ms = at_ms;
  const size_t bytes = EventBytes(e);
  o.bytes += bytes;
  if (o.total_bytes != nullptr) o.total_bytes->fetch_add(bytes, std::memory_order_relaxed);
  o.events.push_back(std::move(e));
  ++o.next_seq;
  // Past the last kEventsKept, only what a webhook still needs is kept, and not even that past
  // the outbox ceiling (the oldest go: counted as dropped by the webhooks that needed them).
  auto over = [&o] {
    return o.total_bytes != nullptr && o.total_bytes->load(std::memory_order_relaxed) > o.ceiling;
  };
  while (o.events.size() > kEventsKept && (o.first_seq() < o.keep_from || over())) {
    const size_t front = EventBytes(o.events.front());
    o.bytes -= front;
    if (o.total_bytes != nullptr) o.total_bytes->fetch_sub(front, std::memory_order_relaxed);
    o.events.pop_front();
  }
}

}  // namespace

void EvaluateEventsSlow(Shard& s, Workspace& ws, uint64_t now_ms) {
  EventOutbox& o = s.outbox;
  o.clock_ms = std::max(o.clock_ms, now_ms);
  const uint64_t at = now_ms != 0 ? now_ms : o.clock_ms;
  // A new period first: what recovers with it follows its period_reset.
  if (ws.event_flags & kPeriodResetPending) {
    ws.event_flags &= uint8_t(~kPeriodResetPending);
    Append(s, ws, EventKind::kPeriodReset, true, {}, at);
  }
  const bool depleted = ws.remaining() == 0;   // kUnlimited is never 0: only capped workspaces
  if (depleted != ((ws.event_flags & kDepletedFired) != 0)) {
    ws.event_flags ^= kDepletedFired;
    Append(s, ws, EventKind::kDepleted, depleted, {}, at);
  }
  if (ws.alerts) {
    for (Alert& a : ws.alerts->alerts) {
      const bool holds = AlertCondition(ws, a.when, a.at);
      if (holds == a.fired) continue;
      a.fired = holds;
      Append(s, ws, EventKind::kAlert, holds, a.name, at);
    }
  }
}

void KeepEventsFrom(Shard& s, uint64_t seq) noexcept { s.outbox.keep_from = seq; }

uint64_t ReadShardEvents(const Shard& s, uint64_t from_seq, size_t max, std::vector<LedgerEvent>& out,
                         uint64_t* first_kept) {
  const EventOutbox& o = s.outbox;
  const uint64_t first = o.first_seq();
  if (first_kept != nullptr) *first_kept = first;
  uint64_t seq = std::max(from_seq, first);
  for (size_t n = 0; n < max && seq < o.next_seq; ++n, ++seq) {
    const StoredEvent& e = o.events[size_t(seq - first)];
    LedgerEvent ev;
    ev.id = MakeId(seq, s.index);
    ev.kind = e.kind;
    ev.workspace = s.workspaces[e.workspace]->id;
    ev.alert = e.alert;
    ev.fired = e.fired;
    ev.used = e.used;
    ev.remaining = e.remaining;
    ev.limit = e.limit;
    ev.period = e.period;
    ev.rev = e.rev;
    ev.at_ms = e.at_ms;
    out.push_back(std::move(ev));
  }
  return seq;
}

}  // namespace ledger

namespace {

// Runs f(lane, shard, workspace, now) under the workspace's shard lock, after applying a boundary
// or grant expiry that is due (a WAL record: a read that finds one due retries as a mutation,
// with a log lane taken before the lock, as ledger_admin.cc's WithWorkspace does).
template <typename T, typename F>
Result<T> OnAlertWorkspace(LedgerLog::Impl& impl, std::string_view workspace, bool mutates, F&& f) {
  if (!IsValidId(workspace)) return Status(Code::kInvalidId, "workspace must be 1-128 bytes of [A-Za-z0-9._:@-]");
  const size_t hash = LedgerLog::Impl::HashId(workspace);
  Shard& s = impl.shards[LedgerLog::Impl::ShardOf(hash)];
  for (bool writer = mutates;; writer = true) {
    std::optional<LaneHold> lane;
    if (writer) lane.emplace(impl);
    ledger::LogLane* l = lane ? lane->get() : nullptr;
    const uint64_t now = impl.clock->NowMs();
    std::lock_guard lock(s.mu);
    if (Status room = LedgerLog::Impl::LogRoom(l); !room.ok()) return room;
    Workspace* ws = LedgerLog::Impl::Find(s, workspace, hash);
    if (ws == nullptr) return Status(Code::kUnknownWorkspace);
    if (now >= ws->next_event_ms) {
      if (!writer && impl.logging) continue;
      impl.Advance(l, s, *ws, now);
    }
    return f(l, s, *ws, now);
  }
}

}  // namespace

Result<std::vector<AlertInfo>> Ledger::SetAlerts(std::string_view workspace, const std::vector<AlertSpec>& alerts) {
  if (Status st = ValidateAlerts(alerts); !st.ok()) return st;
  return OnAlertWorkspace<std::vector<AlertInfo>>(
      *impl_, workspace, true,
      [&](ledger::LogLane* lane, Shard& s, Workspace& ws, uint64_t now) -> Result<std::vector<AlertInfo>> {
        ledger::InstallAlerts(ws, alerts);
        if (lane != nullptr) {
          auto b = impl_->Log(lane, s, ledger::RecordType::kSetAlerts);
          ledger::LogSetAlerts(b, ws, now, alerts);
        }
        impl_->Touched(s, ws, now);   // evaluates: an alert whose condition holds fires now
        return ledger::AlertInfos(ws);
      });
}

Result<std::vector<AlertInfo>> Ledger::GetAlerts(std::string_view workspace) const {
  return OnAlertWorkspace<std::vector<AlertInfo>>(
      *impl_, workspace, false,
      [](ledger::LogLane*, Shard&, Workspace& ws, uint64_t) -> Result<std::vector<AlertInfo>> {
        return ledger::AlertInfos(ws);
      });
}

uint64_t Ledger::ReadEvents(uint32_t shard, uint64_t from_seq, size_t max, std::vector<LedgerEvent>& out,
                            uint64_t* first_kept) const {
  if (shard >= ledger::kShardCount) {
    if (first_kept != nullptr) *first_kept = from_seq;
    return from_seq;
  }
  const Shard& s = impl_->shards[shard];
  std::lock_guard lock(s.mu);
  return ledger::ReadShardEvents(s, from_seq, max, out, first_kept);
}

void Ledger::KeepEventsFrom(uint32_t shard, uint64_t seq) {
  if (shard >= ledger::kShardCount) return;
  Shard& s = impl_->shards[shard];
  std::lock_guard lock(s.mu);
  ledger::KeepEventsFrom(s, seq);
}

Status LedgerLog::SnapshotAlerts(const Ledger& ledger, uint32_t shard, std::string& out) {
  if (shard >= ledger::kShardCount) return Status(Code::kInvalidArgument, "no such shard");
  const Shard& s = ledger.impl_->shards[shard];
  out.clear();
  std::lock_guard lock(s.mu);
  if (!ledger::EncodeAlertsBlock(s, out)) out.clear();   // empty: what a shard without the block loads as
  return Status();
}

Status LedgerLog::LoadAlerts(Ledger& ledger, uint32_t shard, std::string_view block) {
  if (shard >= ledger::kShardCount || ledger.impl_->logging) {
    return Status(Code::kInvalidArgument, "no such shard, or the ledger is logging");
  }
  Shard& s = ledger.impl_->shards[shard];
  std::lock_guard lock(s.mu);
  ledger::AlertsBlock staged;
  if (Status st = ledger::DecodeAlertsBlock(block, s.workspaces.size(), staged); !st.ok()) return st;
  ledger::InstallAlertsBlock(std::move(staged), s);
  return Status();
}

}  // namespace genledger
