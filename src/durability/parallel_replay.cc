#include "durability/parallel_replay.h"

#include <array>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include <concurrentqueue/blockingconcurrentqueue.h>

#include "ledger/shard.h"
#include "ledger/ledger_log.h"

namespace genledger {

namespace {
// Large enough that a batch holds a run of records for each of a worker's shards once grouped
// (Run), small enough to keep memory bounded: 8 x 8,192 records of ~30 bytes per worker.
constexpr size_t kBatchRecords = 8192;
constexpr int kBatchesInFlight = 8;   // per worker: bounds replay memory to a few MiB
}  // namespace

struct ParallelReplayer::Batch {
  std::string bytes;   // payloads back to back
  struct Rec {
    uint8_t type;
    uint16_t shard;
    uint32_t offset, length;
    uint64_t seq, file_offset;
  };
  std::vector<Rec> recs;
  void Clear() {
    bytes.clear();
    recs.clear();
  }
};

struct ParallelReplayer::Worker {
  moodycamel::BlockingConcurrentQueue<Batch*> todo;   // nullptr: stop
  moodycamel::BlockingConcurrentQueue<Batch*> free;   // recycled batches: the in-flight bound
  std::vector<std::unique_ptr<Batch>> owned;
  Batch* filling = nullptr;
  std::thread thread;
  uint64_t applied = 0;
  std::mutex error_mu;
  Status error;
  std::atomic<bool> failed{false};
};

ParallelReplayer::ParallelReplayer(Ledger& ledger, const std::vector<uint64_t>& skip_upto, unsigned workers)
    : ledger_(ledger), skip_upto_(skip_upto) {
  for (unsigned i = 0; i < std::max(1u, workers); ++i) {
    auto w = std::make_unique<Worker>();
    for (int b = 0; b < kBatchesInFlight; ++b) {
      w->owned.push_back(std::make_unique<Batch>());
      w->free.enqueue(w->owned.back().get());
    }
    Worker* raw = w.get();
    w->thread = std::thread([this, raw] { Run(*raw); });
    workers_.push_back(std::move(w));
  }
}

ParallelReplayer::~ParallelReplayer() { (void)Finish(); }

void ParallelReplayer::Run(Worker& w) {
  std::vector<LedgerLog::LogRecordView> views;
  std::vector<uint32_t> order;   // views[k] is b->recs[order[k]]
  for (;;) {
    Batch* b = nullptr;
    w.todo.wait_dequeue(b);
    if (b == nullptr) return;
    if (!w.failed.load()) {
      // Apply the batch shard after shard (a stable counting sort, so each shard keeps its
      // order; shards are independent). Records arrive in the order charges did, one shard after
      // another at random, and each would otherwise miss on its shard's header and refund ring;
      // grouped, a run of one shard's records shares those lines.
      std::array<uint32_t, ledger::kShardCount + 1> first{};
      for (const Batch::Rec& r : b->recs) ++first[r.shard + 1];
      for (uint32_t s = 0; s < ledger::kShardCount; ++s) first[s + 1] += first[s];
      order.resize(b->recs.size());
      for (uint32_t i = 0; i < b->recs.size(); ++i) order[first[b->recs[i].shard]++] = i;
      views.clear();
      for (const uint32_t i : order) {
        const Batch::Rec& r = b->recs[i];
        views.push_back({r.type, std::string_view(b->bytes).substr(r.offset, r.length)});
      }
      size_t applied = 0;
      Status st = LedgerLog::ApplyLogBatch(ledger_, views, &applied);
      w.applied += applied;
      if (!st.ok()) {
        const Batch::Rec& bad = b->recs[order[applied]];
        std::lock_guard lock(w.error_mu);
        w.error = Status(Code::kCorruption, "WAL record seq " + std::to_string(bad.seq) + " at offset " +
                                                std::to_string(bad.file_offset) + " does not apply: " + st.ToString());
        w.failed.store(true);
      }
    }
    b->Clear();
    w.free.enqueue(b);
  }
}

void ParallelReplayer::Dispatch(unsigned i) {
  Worker& w = *workers_[i];
  if (w.filling != nullptr && !w.filling->recs.empty()) {
    w.todo.enqueue(w.filling);
    w.filling = nullptr;
  }
}

Status ParallelReplayer::Add(const wal::Frame& f) {
  uint32_t shard = 0;
  uint64_t no = 0;
  if (!LedgerLog::ParseLogRecordPrefix(f.payload, &shard, &no)) {
    return Status(Code::kCorruption, "WAL record seq " + std::to_string(f.seq) + " at offset " +
                                         std::to_string(f.offset) + " is too short for its shard prefix");
  }
  if (shard >= ledger::kShardCount) {   // Run's counting sort indexes by shard
    return Status(Code::kCorruption, "WAL record seq " + std::to_string(f.seq) + " at offset " + std::to_string(f.offset) +
                                         " names shard " + std::to_string(shard) + " of " + std::to_string(ledger::kShardCount));
  }
  if (shard < skip_upto_.size() && no <= skip_upto_[shard]) {
    ++skipped_;
    return Status();
  }
  if (LedgerLog::IsReplayBarrier(f.type)) return ApplyAlone(f);
  const unsigned i = shard % unsigned(workers_.size());
  Worker& w = *workers_[i];
  if (w.failed.load()) {
    std::lock_guard lock(w.error_mu);
    return w.error;
  }
  if (w.filling == nullptr) w.free.wait_dequeue(w.filling);   // blocks while the worker is behind
  Batch& b = *w.filling;
  b.recs.push_back({f.type, uint16_t(shard), uint32_t(b.bytes.size()), uint32_t(f.payload.size()), f.seq, f.offset});
  b.bytes.append(f.payload);
  ++replayed_;
  if (b.recs.size() >= kBatchRecords) Dispatch(i);
  return Status();
}

Status ParallelReplayer::ApplyAlone(const wal::Frame& f) {
  // Every record queued so far is applied first: hand over the partial batches, then wait until
  // each worker has given back all its batches (it is idle), then apply this one here. The
  // queues order the workers' writes before this thread's, and this thread's before their next.
  for (unsigned i = 0; i < workers_.size(); ++i) Dispatch(i);
  for (auto& w : workers_) {
    Batch* idle[kBatchesInFlight];
    for (Batch*& b : idle) w->free.wait_dequeue(b);
    for (Batch* b : idle) w->free.enqueue(b);
    if (w->failed.load()) {
      std::lock_guard lock(w->error_mu);
      return w->error;
    }
  }
  ++replayed_;
  if (Status st = LedgerLog::ApplyLogRecord(ledger_, f.type, f.payload); !st.ok()) {
    return Status(Code::kCorruption, "WAL record seq " + std::to_string(f.seq) + " at offset " +
                                         std::to_string(f.offset) + " does not apply: " + st.ToString());
  }
  ++applied_alone_;
  return Status();
}

Status ParallelReplayer::Finish() {
  if (finished_) return Status();
  finished_ = true;
  for (unsigned i = 0; i < workers_.size(); ++i) {
    Dispatch(i);
    workers_[i]->todo.enqueue(nullptr);
  }
  Status first;
  uint64_t applied = applied_alone_;
  for (auto& w : workers_) {
    w->thread.join();
    applied += w->applied;
    if (first.ok() && !w->error.ok()) first = w->error;
  }
  if (first.ok() && applied != replayed_) {
    first = Status(Code::kCorruption, "replay applied " + std::to_string(applied) + " of " + std::to_string(replayed_) + " records");
  }
  return first;
}

}  // namespace genledger
