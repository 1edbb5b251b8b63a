#include "ledger/log_lanes.h"

#include <immintrin.h>

#include <atomic>
#include <cstring>

#include <boost/endian/conversion.hpp>

namespace genledger::ledger {

namespace {

// [type u8][payload length u32] then the payload's prefix: [shard u16][record_no u64].
constexpr size_t kPrefixEnd = kBufferedHeader + 2 + 8;

template <typename T>
T Load(const char* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return boost::endian::little_to_native(v);
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
        if (lane.size() - p < kPrefixEnd) return Status(Code::kCorruption, "a log lane ends inside a record");
        const size_t size = kBufferedHeader + Load<uint32_t>(lane.data() + p + 1);
        const uint16_t shard = Load<uint16_t>(lane.data() + p + kBufferedHeader);
        const uint64_t no = Load<uint64_t>(lane.data() + p + kBufferedHeader + 2);
        if (size < kPrefixEnd || size > lane.size() - p || shard >= kShardCount) {
          return Status(Code::kCorruption, "a malformed record in a log lane");
        }
        if (no != collected[shard] + 1) break;
        collected[shard] = no;
        p += size;
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
        if (pos[i] == lanes[i].size()) continue;
        const uint16_t shard = Load<uint16_t>(lanes[i].data() + pos[i] + kBufferedHeader);
        const uint64_t no = Load<uint64_t>(lanes[i].data() + pos[i] + kBufferedHeader + 2);
        return Status(Code::kCorruption, "log record " + std::to_string(no) + " of shard " + std::to_string(shard) +
                                             " is pending but record " + std::to_string(collected[shard] + 1) +
                                             " is in no log lane");
      }
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
