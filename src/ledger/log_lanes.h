// Where the WAL records of applied mutations wait for the log writer (docs/durability.md,
// "The write path").
//
// A mutating thread holds one lane while it applies mutations, and appends each record to that
// lane's buffer under the shard lock that applied it. Lanes belong to threads, not shards: a
// thread writes one sequential buffer that stays in its own cache, and the writer swaps out a
// handful of buffers per round instead of visiting 256 shards (per-shard buffers cost a charge
// about 150 ns in cross-core cache traffic; bench/RESULTS.md).
//
// The records of one shard can then sit in several lanes. Collect restores the shard's order:
// every record carries its shard's record number, each lane holds a shard's records in order,
// and the writer takes all lanes at one instant, so a collected record's predecessors are all
// collected too (in this round or an earlier one). Collect merges the lanes so that each shard's
// records come out in record-number order, which is the order the WAL file must have.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "genledger/status.h"
#include "ledger/shard.h"

namespace genledger::ledger {

// More lanes than threads that mutate (the server's I/O threads plus a few admin callers), so a
// thread almost always finds its own lane free.
inline constexpr uint32_t kLogLaneCount = 16;

// Backpressure: a lane holding this many bytes the writer has not taken yet (the disk is behind)
// refuses further mutations with kOverloaded instead of growing memory. 16 lanes: 64 MiB at most.
inline constexpr size_t kMaxPendingLaneBytes = size_t(4) << 20;

struct alignas(64) LogLane {
  std::mutex mu;
  std::string buf;   // guarded by mu: records as [type u8][payload length u32][payload]
};

// Merges lane buffers into `out` so that each shard's records come out in record-number order,
// starting right after collected[shard], which is advanced. Records of different shards keep
// each lane's relative order where they can. Requires every buffer to hold whole records, each
// payload starting with its shard (u16) and record number (u64), and each lane's records of one
// shard to be in increasing order. kCorruption (with `out` holding what was merged before the
// problem, and collected[] matching it) if a record's predecessor is in no buffer: for lanes
// taken at one instant that cannot happen, so it means a bug, and nothing may be acknowledged.
Status MergeLaneBuffers(std::span<const std::string_view> lanes, std::span<uint64_t, kShardCount> collected,
                        std::string& out);

class LogLanes {
 public:
  LogLanes() = default;
  LogLanes(const LogLanes&) = delete;
  LogLanes& operator=(const LogLanes&) = delete;

  // Sets the record number after which shard `shard`'s next collected record must follow (its
  // count of records applied before logging started). Requires: nothing collected yet.
  void StartNumbering(uint32_t shard, uint64_t last_record_no) noexcept { collected_[shard] = last_record_no; }

  // Locks a lane for the calling thread: the lane it used last if free, else any free one, else
  // waits for its own; while a Collect is taking the lanes, waits for it to finish first. Must be
  // taken before any shard lock and released with Release; a thread holds at most one lane.
  // Thread-safe.
  LogLane* Acquire() noexcept;
  static void Release(LogLane* lane) noexcept { lane->mu.unlock(); }

  // Takes every lane's records (all lanes locked at once) and appends them to `out` in a valid
  // per-shard order (MergeLaneBuffers). Thread-safe; collectors are serialised.
  Status Collect(std::string& out);

 private:
  std::array<LogLane, kLogLaneCount> lanes_;
  alignas(64) std::atomic<bool> collecting_{false};   // a Collect is taking the lanes
  std::mutex collect_mu_;
  std::array<std::string, kLogLaneCount> taken_;       // guarded by collect_mu_; swapped with lanes
  std::array<uint64_t, kShardCount> collected_{};      // guarded by collect_mu_
};

}  // namespace genledger::ledger
