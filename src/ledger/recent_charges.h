// The most recent charges of one shard, kept so they can be refunded.
//
// Charges get dense per-shard sequence numbers, so the window is a ring addressed by sequence:
// no hash index, O(1) insert and lookup, and a hard memory ceiling. The ring starts small and
// doubles while the shard's share of the global refund capacity allows (shared_budget.h); past
// that the oldest charge is forgotten.
#pragma once

#include <algorithm>
#include <cstdint>

#include <boost/circular_buffer.hpp>

#include "ledger/shared_budget.h"

namespace genledger::ledger {

// 24 bytes: at millions of charges per second this ring is written on every charge, so its size
// is cache and memory bandwidth.
struct ChargeRecord {
  // Bits 0-51: the cost; bits 52-63: the charge's model slot + 1 in its workspace's usage
  // history (0: unknown; usage_history.h, PackCostModel). Costs are below 2^44, so a ring written
  // before the slot existed reads as "model unknown". One word, composed in a register before the
  // record is copied into its ring slot, for the reason given below for period_refunded.
  uint64_t cost_model = 0;
  uint32_t workspace = 0;     // Workspace::index
  uint32_t user = 0;          // index in Workspace::users
  uint32_t at_s = 0;          // seconds since the epoch (refund windows are checked to the second)
  // Bits 0-29: the low 30 bits of the workspace's period when charged; bit 30: drawn from more
  // than the plan allowance (Shard::breakdowns has its parts); bit 31: refunded.
  // Not bit-fields: copying a bit-field makes the compiler read the destination's word first,
  // and on the charge path that destination is a ring slot not yet in cache (a load miss that
  // measured as the largest single cost of a charge).
  uint32_t period_refunded = 0;

  uint64_t cost() const noexcept { return cost_model & ((uint64_t(1) << 52) - 1); }
  static uint32_t PeriodBits(uint64_t period) noexcept { return uint32_t(period & 0x3fffffffu); }
  uint32_t period() const noexcept { return period_refunded & 0x3fffffffu; }
  bool has_breakdown() const noexcept { return (period_refunded & 0x40000000u) != 0; }
  void set_has_breakdown() noexcept { period_refunded |= 0x40000000u; }
  bool refunded() const noexcept { return (period_refunded >> 31) != 0; }
  void set_refunded() noexcept { period_refunded |= 0x80000000u; }
};
static_assert(sizeof(ChargeRecord) == 24);

class RecentCharges {
 public:
  // Not thread-safe (guarded by the shard lock). Requires Attach before any Add or Restore.
  // `window_ms`: a charge older than this can no longer be refunded (checked to the second, as
  // Ledger::Refund checks it), so it is forgotten first and not counted when forgotten.
  void Attach(SharedBudget* budget, uint64_t window_ms) noexcept {
    share_.Attach(budget);
    window_ms_ = window_ms;
  }

  // Records the next charge, made at now_ms; returns its sequence number (1, 2, ...).
  // `recovering`: replay (SharedBudget::Borrow).
  uint64_t Add(const ChargeRecord& rec, uint64_t now_ms, bool recovering = false) {
    if (ring_.size() >= share_.allowed() || ring_.full()) MakeRoom(now_ms, recovering);
    ring_.push_back(rec);
    // Fetch the next slot's line now, for writing: the next charge on this shard may come much
    // later, and a store miss taken then would stall behind the shard lock's barrier.
    // When full, the next push overwrites the oldest slot; otherwise it lands just after back().
    __builtin_prefetch(ring_.full() ? &ring_.front() : &ring_.back() + 1, 1, 3);
    return next_seq_++;
  }

  // The charge with this sequence number if still kept, else nullptr.
  ChargeRecord* Find(uint64_t seq) noexcept {
    if (seq < first_seq_ || seq >= next_seq_) return nullptr;
    return &ring_[seq - first_seq_];
  }

  // Forgets the charges that can no longer be refunded at now_ms and returns to the shared
  // budget what the shard no longer needs (the periodic sweep). Returns how many were forgotten.
  uint64_t Expire(uint64_t now_ms);

  // The kept charges, oldest first, as at most two contiguous runs: f(const ChargeRecord*, n)
  // (snapshots copy them whole).
  template <typename F>
  void ForEachRun(F&& f) const {
    for (const auto& [data, n] : {ring_.array_one(), ring_.array_two()}) {
      if (n != 0) f(data, uint64_t(n));
    }
  }

  // True when `c` can no longer be refunded at `now_ms` (Ledger::Refund's window check), whether
  // or not Expire has forgotten it yet (StateDigest skips it for that reason).
  bool Expired(const ChargeRecord& c, uint64_t now_ms) const noexcept {
    const uint64_t at_ms = uint64_t(c.at_s) * 1000;
    return now_ms >= at_ms && now_ms - at_ms > window_ms_;
  }

  uint64_t next_seq() const noexcept { return next_seq_; }
  uint64_t first_seq() const noexcept { return first_seq_; }
  uint64_t size() const noexcept { return ring_.size(); }
  // Charges forgotten inside the refund window because the shared budget was exhausted.
  uint64_t evicted_early() const noexcept { return share_.evicted_early(); }

  // Snapshot load: makes the ring hold `count` charges with seqs [first_seq, first_seq + count),
  // read by rec(i). Beyond what the budget allows (with recovery's overdraft) the oldest are
  // forgotten, as Add would have. Requires first_seq >= 1 and an empty ring (nothing added yet).
  template <typename Rec>
  void Restore(uint64_t first_seq, uint64_t count, Rec&& rec) {
    if (count > share_.allowed()) (void)share_.Grow(count - 1, /*recovering=*/true);
    const uint64_t keep = std::min(count, share_.allowed());
    const uint64_t skip = count - keep;
    ring_.set_capacity(std::min(share_.allowed(), std::max<uint64_t>(8, keep)));
    ring_.clear();
    for (uint64_t i = skip; i < count; ++i) ring_.push_back(rec(i));
    first_seq_ = first_seq + skip;
    next_seq_ = first_seq + count;
  }

 private:
  // At the shard's allowance: forgets the oldest charge if it expired, else borrows from the
  // shared budget, else forgets the oldest charge anyway and counts it. Then grows the ring's
  // memory if it is full. Out of line: the charge path only pays for two compares otherwise.
  void MakeRoom(uint64_t now_ms, bool recovering);

  BudgetShare share_;
  uint64_t window_ms_ = 0;
  uint64_t first_seq_ = 1;   // sequence of ring_.front()
  uint64_t next_seq_ = 1;
  boost::circular_buffer<ChargeRecord> ring_;
};

}  // namespace genledger::ledger
