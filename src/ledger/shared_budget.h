// A capacity shared by every shard: the idempotency entries and the refundable charges
// (docs/ledger.md, "Idempotency" and "Refunds").
//
// A workspace lives in one shard, so splitting a capacity evenly over the shards would let one
// busy workspace use only 1/256 of it: a retry arriving after its id was pushed out by the
// workspace's own traffic would be debited again. Instead each shard may always hold a small
// floor, and borrows the rest in chunks from one pool that any shard may draw on, so one busy
// workspace may use nearly the whole capacity. Only when the pool is empty does a shard forget
// one of its own entries that is still inside its window; that is counted and logged.
//
// Chunks keep the shared atomic off the per-charge path: a shard touches the pool once per
// chunk of entries, not once per entry. At most one chunk per shard sits borrowed but unused.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "log/log.h"

namespace genledger::ledger {

class SharedBudget {
 public:
  // `what` names the capacity in log lines ("idempotency", "refund"); must outlive the budget.
  SharedBudget(const char* what, const char* option) noexcept : what_(what), option_(option) {}

  // Sets the capacity `total` shared by `shards` shards. Each shard's floor is at least 1, so a
  // total below the shard count behaves as one entry per shard. Requires: no entry borrowed yet.
  void Init(uint64_t total, uint32_t shards) noexcept;

  uint64_t floor() const noexcept { return floor_; }
  uint64_t total() const noexcept { return floor_ * shards_ + pool_; }

  // Borrows up to `want` entries (normally one chunk) from the pool; returns how many (0: the
  // pool is empty). Recovery may overdraw the pool up to twice its size: replay cannot sweep
  // other shards' expired entries the way the live ledger did, and must not forget what the live
  // ledger still honoured; the overdraft is paid back as live sweeps return slack. Thread-safe.
  uint64_t Borrow(uint64_t want, bool recovering) noexcept;
  // Gives back `n` borrowed entries. Thread-safe.
  void Return(uint64_t n) noexcept { borrowed_.fetch_sub(n, std::memory_order_relaxed); }
  // How many entries a shard borrows at a time.
  uint64_t chunk() const noexcept { return chunk_; }

  // Logs that entries are being forgotten inside their window (the pool is empty), at most once
  // a minute. Thread-safe.
  void LogEarlyEviction(uint64_t now_ms) noexcept;
  uint64_t borrowed() const noexcept { return borrowed_.load(std::memory_order_relaxed); }

 private:
  const char* what_;
  const char* option_;
  uint32_t shards_ = 1;
  uint64_t floor_ = 1;
  uint64_t pool_ = 0;
  uint64_t chunk_ = 1;
  std::atomic<uint64_t> borrowed_{0};
  log::RateLimit log_limit_{60'000};
};

// One shard's part of a SharedBudget: how many entries the shard may hold now (its floor plus
// what it borrowed). Not thread-safe: guarded by the shard lock.
class BudgetShare {
 public:
  void Attach(SharedBudget* budget) noexcept {
    budget_ = budget;
    allowed_ = budget->floor();
  }
  SharedBudget* budget() const noexcept { return budget_; }
  uint64_t allowed() const noexcept { return allowed_; }

  // Makes room for at least `size + 1` entries by borrowing chunks; false if the pool is empty
  // (the caller must then forget one of its own entries). Requires size >= allowed().
  bool Grow(uint64_t size, bool recovering) noexcept;

  // Returns what the shard no longer needs once it holds only `size` entries, keeping one chunk
  // of slack so a shard near its allowance does not borrow and return on every sweep. Returns
  // nothing unless the slack is worth it (over a quarter of the allowance and two chunks), so
  // shrinking the memory behind the allowance is paid for by the entries that went away.
  // True if the allowance went down.
  bool Trim(uint64_t size) noexcept;

  // Counts one of the shard's entries forgotten inside its window because the pool was empty.
  // The count is the shard's own, under its lock: at exhaustion every insert evicts, and a shared
  // counter would put a contended atomic on every charge. The log is asked at most once a second
  // per shard, for the same reason.
  void CountEarlyEviction(uint64_t now_ms) noexcept {
    ++evicted_early_;
    if (now_ms >= next_log_ms_) {
      next_log_ms_ = now_ms + 1000;
      budget_->LogEarlyEviction(now_ms);
    }
  }
  uint64_t evicted_early() const noexcept { return evicted_early_; }

  ~BudgetShare() {
    if (budget_ != nullptr && allowed_ > budget_->floor()) budget_->Return(allowed_ - budget_->floor());
  }

 private:
  SharedBudget* budget_ = nullptr;
  uint64_t allowed_ = 1;
  uint64_t evicted_early_ = 0;
  uint64_t next_log_ms_ = 0;
};

// The next memory capacity of a full ring of `size` entries drawing on `share`. The ring's memory
// doubles, independently of the allowance, which grows a chunk at a time: growing the memory by
// a chunk would copy the whole ring every chunk. So a ring may have up to as many free slots as
// entries, but never more slots than the whole budget (or the shard's allowance, if recovery
// overdrew it), while its entries never exceed the allowance.
inline uint64_t GrownCapacity(uint64_t size, const BudgetShare& share) noexcept {
  const uint64_t most = std::max(share.allowed(), share.budget()->total());
  return std::max(size + 1, std::min(std::max<uint64_t>(8, size * 2), most));
}

}  // namespace genledger::ledger
