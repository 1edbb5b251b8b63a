// Remembered results of charges and reservations that carried a client idempotency id.
//
// Bounded in both time and memory (design-notes §5): entries are kept in arrival order in a
// ring, with a hash index from (workspace, id) to the entry. Any entry older than the window is
// ignored, and dropped as new ones arrive and by the periodic sweep. The shard holds as many as
// its share of the global capacity allows, borrowing from the pool every shard shares
// (shared_budget.h); only when the pool is empty is the oldest entry forgotten inside its window
// (counted). Not thread-safe: guarded by the shard lock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/circular_buffer.hpp>
#include <boost/unordered_map.hpp>

#include "ledger/shared_budget.h"
#include "ledger/string_key.h"

namespace genledger::ledger {

enum class IdempotentOp : uint8_t { kCharge = 1, kReserve = 2, kGrant = 3 };

// Everything a retry must repeat exactly to be the same request.
struct IdempotencyParams {
  IdempotentOp op = IdempotentOp::kCharge;
  uint32_t user = 0;
  // The model's id, interned (CatalogItem::interned_id; null: no model): the same under every
  // catalog version, so a retry after a catalog change is still recognised.
  const std::string* model = nullptr;
  uint64_t quantity = 0;
  uint64_t seconds_milli = 0;
  uint32_t outputs = 0;
  uint32_t formats = 0;
  uint64_t ttl_ms = 0;
  bool operator==(const IdempotencyParams&) const = default;
};
// The interned model pointer took the place of a catalog index and its padding: an entry costs
// what it did (memory is bounded by --idempotency-capacity entries).
static_assert(sizeof(IdempotencyParams) == 48);

// The original answer, returned again on a retry.
struct IdempotencyOutcome {
  uint64_t id = 0;            // charge or reservation id
  uint64_t cost = 0;          // cost charged or held
  uint64_t remaining = 0;
  uint64_t user_used = 0;
  uint64_t expires_at_ms = 0; // reservations only
};

struct IdempotencyEntry {
  const std::string* key = nullptr;   // owned by the index node; stable
  uint64_t seq = 0;
  uint64_t created_ms = 0;
  IdempotencyParams params;
  IdempotencyOutcome outcome;
};

class IdempotencyTable {
 public:
  // Requires: called once, before any Insert or Restore.
  void Attach(SharedBudget* budget, uint64_t window_ms) noexcept {
    share_.Attach(budget);
    window_ms_ = window_ms;
  }

  // The live entry for (workspace, id) at `now_ms`, or nullptr.
  const IdempotencyEntry* Find(uint32_t workspace, std::string_view id, uint64_t now_ms) const;

  // Remembers a new result. Requires: no live entry for (workspace, id). `recovering`: replay
  // (SharedBudget::Borrow).
  void Insert(uint32_t workspace, std::string_view id, uint64_t now_ms,
              const IdempotencyParams& params, const IdempotencyOutcome& outcome, bool recovering = false);

  // Snapshot load: appends an entry as the newest, without expiring older ones first (they were
  // live when the snapshot was taken, whatever their clocks said). Same key rule as Insert.
  void Restore(uint32_t workspace, std::string_view id, uint64_t created_ms,
               const IdempotencyParams& params, const IdempotencyOutcome& outcome) {
    Append(workspace, id, created_ms, params, outcome, /*recovering=*/true);
  }

  // Drops entries older than the window. Returns how many.
  uint64_t Expire(uint64_t now_ms);
  // Expire, then returns to the shared budget what the shard no longer needs (periodic sweep).
  uint64_t Sweep(uint64_t now_ms);

  uint64_t size() const noexcept { return ring_.size(); }
  // Entries forgotten inside their window because the shared budget was exhausted.
  uint64_t evicted_early() const noexcept { return share_.evicted_early(); }

  // Visits the entries oldest first (for digests and snapshots).
  template <typename F>
  void ForEach(F&& f) const {
    for (const IdempotencyEntry& e : ring_) f(*e.key, e);
  }

  // True when `e` is past its window at `now_ms`: Find no longer answers it, whether or not a
  // sweep has dropped it yet (StateDigest skips it for that reason).
  bool Expired(const IdempotencyEntry& e, uint64_t now_ms) const noexcept {
    return now_ms >= e.created_ms && now_ms - e.created_ms >= window_ms_;
  }

 private:
  // (workspace index as 4 raw bytes) + id, built on the stack for lookups.
  struct KeyBuf {
    char data[4 + 128];
    size_t len;
    std::string_view view() const noexcept { return {data, len}; }
  };
  static KeyBuf MakeKey(uint32_t workspace, std::string_view id) noexcept;

  const IdempotencyEntry* EntryFor(uint64_t seq) const noexcept {
    if (ring_.empty() || seq < ring_.front().seq || seq > ring_.back().seq) return nullptr;
    return &ring_[seq - ring_.front().seq];
  }
  void PopOldest();
  void Append(uint32_t workspace, std::string_view id, uint64_t created_ms, const IdempotencyParams& params,
              const IdempotencyOutcome& outcome, bool recovering);
  BudgetShare share_;
  uint64_t window_ms_ = 0;
  uint64_t next_seq_ = 1;
  boost::circular_buffer<IdempotencyEntry> ring_;
  boost::unordered_map<std::string, uint64_t, StringKeyHash, StringKeyEq> index_;   // key -> entry seq
};

}  // namespace genledger::ledger
