// What the delivery engine needs from the ledger and the WAL, as an interface so that the engine
// is testable with a fake (tests/webhook_delivery_test.cc) and the server wires the real ledger
// (LedgerEventSource in src/webhook/service.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "genledger/ledger.h"

namespace genledger {


}  // namespace genledger

namespace genledger::webhook {

inline uint64_t EventSeq(uint64_t id) noexcept { return id >> 8; }
inline uint32_t EventShard(uint64_t id) noexcept { return static_cast<uint32_t>(id & 0xFF); }

// Called by the engine's own thread(s) only. Implementations must be thread-safe against the
// ledger's other users (the real one takes the shard's lock) and must never block for long.
class EventSource {
 public:
  virtual ~EventSource() = default;
  virtual uint32_t ShardCount() const = 0;
  // Ledger::ReadEvents: events of `shard` with seq >= from_seq, at most `max`, appended to out;
  // returns the seq to read from next; *first_kept = the oldest seq still kept.
  virtual uint64_t ReadEvents(uint32_t shard, uint64_t from_seq, size_t max, std::vector<LedgerEvent>& out,
                              uint64_t* first_kept) = 0;
  // Durability::Ticket / IsDurable / RequestDurable: an event read before Ticket() was taken is
  // durable once IsDurable(ticket).
  virtual uint64_t Ticket() = 0;
  virtual bool IsDurable(uint64_t ticket) = 0;
  virtual void RequestDurable(uint64_t ticket) = 0;
  // ledger::KeepEventsFrom (helper A): the outbox of `shard` may prune events below `seq` (the
  // slowest live webhook's cursor there). Past the outbox byte ceiling it prunes anyway, which
  // the engine sees as first_kept > its cursor (counted as dropped).
  virtual void KeepEventsFrom(uint32_t shard, uint64_t seq) = 0;
  // Appends WAL type 25 webhook_progress on `shard` (docs/wal-records.md): every event of the
  // shard below next_seq is done for `webhook`; given_up / dropped are this advance's counts.
  // Errors are logged by the implementation; the engine retries progress on its next advance.
  virtual void RecordProgress(uint32_t webhook, uint32_t shard, uint64_t next_seq, uint64_t given_up,
                              uint64_t dropped) = 0;
};

}  // namespace genledger::webhook
