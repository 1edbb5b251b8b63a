// Recovery's WAL replay on several threads.
//
// Shards own disjoint workspaces, so only the order of records *within* a shard matters (design
// notes §1). The scanning thread hands each record to the worker that owns its shard
// (shard % workers), in batches over bounded queues; each worker applies its batches in order
// with LedgerLog::ApplyLogBatch, which overlaps their cache misses. Records a snapshot already
// contains are skipped by per-shard record number before they are queued. A barrier record
// (LedgerLog::IsReplayBarrier: a catalog replacement) is applied alone at its place in the file,
// after every record before it and before any after it (docs/wal-records.md, "Catalog records").
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "genledger/ledger.h"
#include "genledger/status.h"
#include "wal/segment_reader.h"

namespace genledger {

class ParallelReplayer {
 public:
  // `skip_upto` (may be empty): per shard, the last record number a loaded snapshot holds.
  // Requires: workers >= 1; `ledger` and `skip_upto` outlive the replayer; nothing else mutates
  // the ledger until Finish returns.
  ParallelReplayer(Ledger& ledger, const std::vector<uint64_t>& skip_upto, unsigned workers);
  ~ParallelReplayer();   // Finish() if not called
  ParallelReplayer(const ParallelReplayer&) = delete;
  ParallelReplayer& operator=(const ParallelReplayer&) = delete;

  // Queues one frame (its payload is copied). Returns the first failure a worker has reported so
  // far, so that the scan stops early; blocks while the workers are too far behind.
  Status Add(const wal::Frame& frame);
  // Hands over what is buffered, waits for the workers, and returns the first failure (a
  // kCorruption naming the record's sequence number and offset), or ok.
  Status Finish();

  uint64_t replayed() const noexcept { return replayed_; }
  uint64_t skipped() const noexcept { return skipped_; }

 private:
  struct Batch;
  struct Worker;
  void Dispatch(unsigned w);
  // Waits until every worker has applied what it was given, then applies `f` on this thread.
  Status ApplyAlone(const wal::Frame& f);
  void Run(Worker& w);

  Ledger& ledger_;
  const std::vector<uint64_t>& skip_upto_;
  std::vector<std::unique_ptr<Worker>> workers_;
  uint64_t replayed_ = 0;
  uint64_t skipped_ = 0;
  uint64_t applied_alone_ = 0;   // barrier records, applied by ApplyAlone
  bool finished_ = false;
};

}  // namespace genledger
