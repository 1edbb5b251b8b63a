#include "ledger/log_lanes.h"

#include <immintrin.h>

#include <atomic>
#include <cstring>

#include <boost/endian/conversion.hpp>

#include "ledger/ledger_log.h"

namespace genledger::ledger {

namespace {

// The record at lane[p]: [type u8][payload length u32][payload], the payload starting with its
// shard and record number (read as replay reads them, LedgerLog::ParseLogRecordPrefix).
struct Head {
  size_t size = 0;
  uint32_t shard = 0;
  uint64_t no = 0;
};
bool ReadHead(std::string_view lane, size_t p, Head* h) noexcept {
  if (lane.size() - p < kBufferedHeader) return false;
  uint32_t len;
  std::memcpy(&len, lane.data() + p + 1, sizeof len);
  h->size = kBufferedHeader + boost::endian::little_to_native(len);
  return h->size <= lane.size() - p &&
         LedgerLog::ParseLogRecordPrefix(lane.substr(p + kBufferedHeader, h->size - kBufferedHeader), &h->shard, &h->no) &&
         h->shard < kShardCount;
}

// A producer holds its lane for a chunk of operations (microseconds) and takes it again right
// after: a plain lock() would sleep, and std::mutex is not fair, so the producer usually wins the
// lane back before the sleeping writer is scheduled (measured: up to 115 us per round spent
// waiting; 7.5 us with this). 1,024 pauses, tens of microseconds, span several chunks.
void LockSoon(std::mutex& mu) {
  for (int i = 0; i < 1024; ++i) {
    if (mu.try_lock()) return;
    _mm_pause();
  }
  mu.lock();
}

}  // namespace

Status MergeLaneBuffers(std::span<const std::string_view> lanes, std::span<uint64_t, kShardCount> collected,
                        std::string& out) {
  if (lanes.size() > kLogLaneCount) return Status(Code::kInvalidArgument, "too many log lanes to merge");
  std::array<size_t, kLogLaneCount> pos{};
  // Each pass moves every lane forward while its next record is the next of its shard. A record
  // can only wait for a predecessor in another lane, which some later pass reaches; a pass that
  // moves nothing means a predecessor is missing.
  for (;;) {
    bool moved = false, done = true;
    for (size_t i = 0; i < lanes.size(); ++i) {
      const std::string_view lane = lanes[i];
      const size_t start = pos[i];
      size_t& p = pos[i];
      while (p < lane.size()) {
        Head h;
        if (!ReadHead(lane, p, &h)) return Status(Code::kCorruption, "a malformed or cut record in a log lane");
        if (h.no != collected[h.shard] + 1) break;
        collected[h.shard] = h.no;
        p += h.size;
      }
      if (p > start) {
        out.append(lane.substr(start, p - start));
        moved = true;
      }
      if (p < lane.size()) done = false;
    }
    if (done) return Status();
    if (!moved) {
      for (size_t i = 0; i < lanes.size(); ++i) {
        Head h;
        if (pos[i] == lanes[i].size() || !ReadHead(lanes[i], pos[i], &h)) continue;
        return Status(Code::kCorruption, "log record " + std::to_string(h.no) + " of shard " + std::to_string(h.shard) +
                                             " is pending but record " + std::to_string(collected[h.shard] + 1) +
                                             " is in no log lane");
      }
      return Status(Code::kCorruption, "the log lanes could not be merged");
    }
  }
}

LogLane* LogLanes::Acquire() noexcept {
  // A thread keeps to one lane, so its records stream through one buffer in its own cache.
  static std::atomic<uint32_t> next_thread{0};
  thread_local uint32_t mine = next_thread.fetch_add(1, std::memory_order_relaxed) % kLogLaneCount;
  for (;;) {
    // While a collection is taking the lanes, wait for it instead of grabbing a lane it has not
    // reached yet: otherwise producers that retake their lane between two chunks, or move to
    // lanes further on, can keep the writer from ever holding all of them.
    if (collecting_.load(std::memory_order_acquire)) {
      collecting_.wait(true, std::memory_order_acquire);
      continue;
    }
    if (lanes_[mine].mu.try_lock()) return &lanes_[mine];
    for (uint32_t k = 1; k < kLogLaneCount; ++k) {   // another thread has ours: any free one
      const uint32_t i = (mine + k) % kLogLaneCount;
      if (lanes_[i].mu.try_lock()) {
        mine = i;
        return &lanes_[i];
      }
    }
    if (!collecting_.load(std::memory_order_acquire)) {
      lanes_[mine].mu.lock();
      return &lanes_[mine];
    }
  }
}

Status LogLanes::Collect(std::string& out) {
  std::lock_guard guard(collect_mu_);
  // All lanes at one instant: a record taken now had its shard predecessors appended before it,
  // under the lanes' locks, so they are taken now too (or were taken before).
  collecting_.store(true, std::memory_order_release);
  for (LogLane& l : lanes_) LockSoon(l.mu);
  for (uint32_t i = 0; i < kLogLaneCount; ++i) lanes_[i].buf.swap(taken_[i]);
  for (LogLane& l : lanes_) l.mu.unlock();
  collecting_.store(false, std::memory_order_release);
  collecting_.notify_all();
  std::array<std::string_view, kLogLaneCount> views;
  for (uint32_t i = 0; i < kLogLaneCount; ++i) views[i] = taken_[i];
  Status st = MergeLaneBuffers(views, collected_, out);
  for (std::string& t : taken_) t.clear();   // keeps capacity: the steady state allocates nothing
  return st;
}

}  // namespace genledger::ledger
