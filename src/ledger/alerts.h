// Alerts and the event outbox of a shard (docs/events.md, "Alerts", "Event ids and the outbox").
// Data only, so that shard.h can hold it; the evaluation is in ledger_events.h / .cc.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "genledger/ledger.h"

namespace genledger::ledger {

// Events every shard keeps for the live streams, whatever the webhooks' cursors say.
inline constexpr size_t kEventsKept = 1024;

// Workspace::event_flags.
inline constexpr uint8_t kDepletedFired = 1;        // the built-in `depleted` is in its fired state
inline constexpr uint8_t kPeriodResetPending = 2;   // a new period started; `period_reset` not yet emitted
inline constexpr uint8_t kEventFlagsMask = kDepletedFired | kPeriodResetPending;

struct Alert {
  std::string name;
  AlertWhen when = AlertWhen::kUsedPercent;
  bool fired = false;
  uint64_t at = 0;
};

// A workspace's alerts, allocated only for workspaces that have some (Workspace::alerts).
struct AlertSet {
  std::vector<Alert> alerts;
};
struct AlertSetDeleter {
  void operator()(AlertSet* p) const noexcept;
};

// One event as a shard keeps it: the workspace by index (workspaces are never freed, so the id
// is looked up when read), the sequence implied by the position in the outbox.
struct StoredEvent {
  uint32_t workspace = 0;
  EventKind kind = EventKind::kAlert;
  bool fired = true;
  std::string alert;
  uint64_t used = 0, remaining = 0, limit = 0, period = 0, rev = 0, at_ms = 0;
};

// A shard's recent events: seqs first_seq() .. next_seq - 1, dense.
struct EventOutbox {
  std::deque<StoredEvent> events;
  uint64_t next_seq = 1;
  // The time of events caused by a record that carries none (a release, a refund, an admin
  // change): the latest time an evaluation of this shard was given. Replay gives the same times
  // in the same order, so it recomputes the same at_ms.
  uint64_t clock_ms = 0;
  // Events with seq >= keep_from are kept beyond kEventsKept (KeepEventsFrom; the webhooks'
  // slowest cursor). UINT64_MAX: nothing asks.
  uint64_t keep_from = UINT64_MAX;
  // Approximate heap bytes of `events`, and the ledger-wide sum over every shard's outbox with
  // its ceiling (LedgerOptions::event_outbox_bytes): past it, an append prunes this shard's
  // oldest events beyond the last kEventsKept even if a webhook still needs them (its stream sees
  // them as dropped). Set by the ledger for every shard; null in a scratch outbox.
  size_t bytes = 0;
  std::atomic<uint64_t>* total_bytes = nullptr;
  uint64_t ceiling = UINT64_MAX;

  uint64_t first_seq() const noexcept { return next_seq - events.size(); }
};

// Approximate bytes one kept event costs.
inline size_t EventBytes(const StoredEvent& e) noexcept {
  return sizeof(StoredEvent) + (e.alert.capacity() > 15 ? e.alert.capacity() : 0);
}

}  // namespace genledger::ledger
