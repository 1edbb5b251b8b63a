// The most recent charges of one shard, kept so they can be refunded.
//
// Charges get dense per-shard sequence numbers, so the window is a ring addressed by sequence:
// no hash index, O(1) insert and lookup, and a hard memory ceiling. The ring starts small and
// doubles up to its capacity; past that the oldest charge is forgotten.
#pragma once

#include <cstdint>

#include <boost/circular_buffer.hpp>

namespace genledger::ledger {

struct ChargeRecord {
  uint32_t workspace = 0;     // Workspace::index
  uint32_t user = 0;          // index in Workspace::users
  uint64_t cost = 0;
  uint64_t at_ms = 0;
  uint64_t period = 0;        // the workspace's period when charged
  bool refunded = false;
};

class RecentCharges {
 public:
  // Requires capacity >= 1. Not thread-safe (guarded by the shard lock).
  explicit RecentCharges(uint64_t capacity = 1) : capacity_(capacity) {}

  void set_capacity(uint64_t capacity) { capacity_ = capacity < 1 ? 1 : capacity; }

  // Records the next charge; returns its sequence number (1, 2, ...).
  uint64_t Add(const ChargeRecord& rec) {
    if (ring_.full()) {
      if (ring_.capacity() < capacity_) {
        ring_.set_capacity(std::min<uint64_t>(capacity_, ring_.capacity() < 8 ? 8 : ring_.capacity() * 2));
      } else {
        ++first_seq_;   // push_back below overwrites the oldest
      }
    }
    ring_.push_back(rec);
    return next_seq_++;
  }

  // The charge with this sequence number if still kept, else nullptr.
  ChargeRecord* Find(uint64_t seq) noexcept {
    if (seq < first_seq_ || seq >= next_seq_) return nullptr;
    return &ring_[seq - first_seq_];
  }

  uint64_t next_seq() const noexcept { return next_seq_; }

 private:
  uint64_t capacity_;
  uint64_t first_seq_ = 1;   // sequence of ring_.front()
  uint64_t next_seq_ = 1;
  boost::circular_buffer<ChargeRecord> ring_;
};

}  // namespace genledger::ledger
