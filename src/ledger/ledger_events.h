// Evaluating a workspace's alerts and built-in events after a change (docs/events.md, "Alerts",
// "Event ids and the outbox"). Everything here requires the shard's lock held.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "genledger/ledger.h"
#include "genledger/status.h"
#include "ledger/alerts.h"
#include "ledger/log_record.h"
#include "ledger/shard.h"

namespace genledger::ledger {

void EvaluateEventsSlow(Shard& s, Workspace& ws, uint64_t now_ms);

// After every change of a workspace (one WAL record naming it), live and in replay at the same
// points, under the shard lock: fires or recovers its alerts and the built-in `depleted`, and
// emits `period_reset` after a new period (ApplyNewPeriod sets kPeriodResetPending). `now_ms` is
// the time the change's record carries, or 0 when it carries none (the event then takes the
// shard's event clock, EventOutbox::clock_ms): a live caller must pass what replay will see, or
// the events' at_ms would differ after a restart.
//
// Cheap for a workspace without alerts: one compare of remaining against 0 and of the flags.
inline void EvaluateEvents(Shard& s, Workspace& ws, uint64_t now_ms) {
  const uint8_t steady = ws.remaining() == 0 ? kDepletedFired : 0;
  if (ws.alerts == nullptr && ws.event_flags == steady) [[likely]] return;
  EvaluateEventsSlow(s, ws, now_ms);
}

// Marks the start of a new period (a rollover, type 16, or a reset, type 5): the next
// evaluation emits `period_reset` first. Called by ApplyNewPeriod, live and in replay.
inline void NoteNewPeriod(Workspace& ws) noexcept { ws.event_flags |= kPeriodResetPending; }

// Whether an alert's condition holds for the workspace now (AlertWhen).
bool AlertCondition(const Workspace& ws, AlertWhen when, uint64_t at) noexcept;
// used_percent's denominator: the plan limit + what grants gave this period + grants' remaining;
// kUnlimited for an unlimited workspace.
uint64_t Allowance(const Workspace& ws) noexcept;

// Installs `alerts` (already valid) as ws's alerts, all armed. Evaluate afterwards.
void InstallAlerts(Workspace& ws, const std::vector<AlertSpec>& alerts);
std::vector<AlertInfo> AlertInfos(const Workspace& ws);

// WAL type 22 after its prefix: the record's fields, and their effect (InstallAlerts; the caller
// then calls Touched with *ws and *at_ms, which evaluates). kCorruption, nothing changed, for a
// record out of range.
void LogSetAlerts(RecordBuilder& b, const Workspace& ws, uint64_t at_ms, const std::vector<AlertSpec>& alerts);
Status ApplySetAlerts(Shard& s, RecordReader& r, Workspace** ws, uint64_t* at_ms);

// The pruning hook for the webhooks (helper W): events with seq >= `seq` are kept beyond the
// last kEventsKept (pass the slowest cursor of the shard; UINT64_MAX: keep only the last
// kEventsKept). Takes effect at the next event appended. A byte ceiling over every shard's
// outbox belongs to the caller: EventOutbox::bytes is kept up to date for it.
void KeepEventsFrom(Shard& s, uint64_t seq) noexcept;

// Reads events of shard s (Ledger::ReadEvents under the lock).
uint64_t ReadShardEvents(const Shard& s, uint64_t from_seq, size_t max, std::vector<LedgerEvent>& out,
                         uint64_t* first_kept);

// Snapshot extension block 2 (docs/snapshot-format.md): the shard's alert state and outbox.
// Encode (appends the block's body) under the shard lock. Decode checks a body in full against
// the payload's workspace count and stages it (kCorruption for anything out of range); install
// puts it into the loaded shard, whose workspaces exist by then.
// Returns false, having appended nothing, when the shard has nothing for the block (no alert
// state, no event ever): the block is then left out, as a shard without it loads the same.
bool EncodeAlertsBlock(const Shard& s, std::string& out);
struct AlertsBlock {
  struct State {
    uint32_t index = 0;
    uint8_t flags = 0;
    std::vector<Alert> alerts;
  };
  std::vector<State> states;
  EventOutbox outbox;
};
Status DecodeAlertsBlock(std::string_view block, size_t workspace_count, AlertsBlock& out);
void InstallAlertsBlock(AlertsBlock&& in, Shard& s);

}  // namespace genledger::ledger
