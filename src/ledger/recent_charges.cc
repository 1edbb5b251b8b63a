#include "ledger/recent_charges.h"

namespace genledger::ledger {

void RecentCharges::MakeRoom(uint64_t now_ms, bool recovering) {
  const uint64_t size = ring_.size();
  if (size >= share_.allowed()) {
    const bool expired = Expired(ring_.front(), now_ms);
    if (expired || !share_.Grow(size, recovering)) {
      if (!expired) share_.CountEarlyEviction(now_ms);
      ring_.pop_front();
      ++first_seq_;
    }
  }
  // Doubling, not a chunk at a time: see IdempotencyTable::Append.
  if (ring_.full()) ring_.set_capacity(GrownCapacity(ring_.size(), share_));
}

uint64_t RecentCharges::Expire(uint64_t now_ms) {
  uint64_t n = 0;
  while (!ring_.empty() && Expired(ring_.front(), now_ms)) {
    ring_.pop_front();
    ++first_seq_;
    ++n;
  }
  if (share_.Trim(ring_.size()) && ring_.capacity() > share_.allowed()) {
    ring_.set_capacity(std::max<uint64_t>(ring_.size(), share_.allowed()));
  }
  return n;
}

}  // namespace genledger::ledger
