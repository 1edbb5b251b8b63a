#include "ledger/idempotency_table.h"

#include <algorithm>
#include <cstring>

namespace genledger::ledger {

IdempotencyTable::KeyBuf IdempotencyTable::MakeKey(uint32_t workspace, std::string_view id) noexcept {
  KeyBuf k;
  std::memcpy(k.data, &workspace, 4);
  const size_t n = std::min(id.size(), sizeof(k.data) - 4);   // ids are validated to <= 128
  std::memcpy(k.data + 4, id.data(), n);
  k.len = 4 + n;
  return k;
}

const IdempotencyEntry* IdempotencyTable::Find(uint32_t workspace, std::string_view id,
                                               uint64_t now_ms) const {
  const KeyBuf key = MakeKey(workspace, id);
  auto it = index_.find(key.view());
  if (it == index_.end()) return nullptr;
  const IdempotencyEntry* e = EntryFor(it->second);
  if (e == nullptr || Expired(*e, now_ms)) return nullptr;
  return e;
}

void IdempotencyTable::PopOldest() {
  const IdempotencyEntry& old = ring_.front();
  // The key may since have been re-used by a newer entry; only drop the index if it is ours.
  auto it = index_.find(std::string_view(*old.key));
  if (it != index_.end() && it->second == old.seq) index_.erase(it);
  ring_.pop_front();
}

void IdempotencyTable::Insert(uint32_t workspace, std::string_view id, uint64_t now_ms,
                              const IdempotencyParams& params, const IdempotencyOutcome& outcome, bool recovering) {
  Expire(now_ms);   // the shard's own expired entries go first
  Append(workspace, id, now_ms, params, outcome, recovering);
}

void IdempotencyTable::Append(uint32_t workspace, std::string_view id, uint64_t now_ms,
                              const IdempotencyParams& params, const IdempotencyOutcome& outcome, bool recovering) {
  const uint64_t size = ring_.size();
  if (size >= share_.allowed() && !share_.Grow(size, recovering)) {
    // The shared pool is empty: the shard's oldest entry goes, inside its window unless it had
    // expired (Restore does not expire first).
    if (!Expired(ring_.front(), now_ms)) share_.CountEarlyEviction(now_ms);
    PopOldest();
  }
  if (ring_.full()) ring_.set_capacity(GrownCapacity(ring_.size(), share_));
  const KeyBuf key = MakeKey(workspace, id);
  const uint64_t seq = next_seq_++;
  auto [it, inserted] = index_.try_emplace(std::string(key.view()), seq);
  if (!inserted) it->second = seq;   // the previous entry for this key had expired
  ring_.push_back(IdempotencyEntry{&it->first, seq, now_ms, params, outcome});
}

uint64_t IdempotencyTable::Expire(uint64_t now_ms) {
  uint64_t n = 0;
  while (!ring_.empty() && Expired(ring_.front(), now_ms)) {
    PopOldest();
    ++n;
  }
  return n;
}

}  // namespace genledger::ledger

namespace genledger::ledger {

uint64_t IdempotencyTable::Sweep(uint64_t now_ms) {
  const uint64_t n = Expire(now_ms);
  if (share_.Trim(ring_.size()) && ring_.capacity() > share_.allowed()) {
    ring_.set_capacity(std::max<uint64_t>(ring_.size(), share_.allowed()));
  }
  return n;
}

}  // namespace genledger::ledger
