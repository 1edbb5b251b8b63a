// Group commit and recovery (docs/durability.md).
//
// Why Ticket() = round + 1 is sound. The writer runs rounds: it first increments `round`
// (seq_cst), then, for each shard whose dirty flag it reads as set (seq_cst), takes the shard lock
// and moves the shard's buffer out. A mutation appends its record under the shard lock and, if
// the buffer was empty, sets the dirty flag (seq_cst) inside that critical section; its caller
// reads `round` (seq_cst) after the mutation returned, getting r, and waits for round r + 1.
// Suppose round R+1 misses the record. Either the writer read the flag as 0 before the producer
// set it - then in the single total order of seq_cst operations round=R+1 precedes the flag
// store, which precedes the caller's read, so r >= R+1 and the record is taken by round R+2 <=
// r+1 at the latest (its flag stays set until taken) - or the writer took the shard's buffer
// before the producer's critical section, and then round=R+1 happened before that critical
// section too, so again r >= R+1. Either way the round that takes the record is <= r + 1.
#include "genledger/durability.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "wal/segment_reader.h"
#include "wal/segment_writer.h"

namespace genledger {

std::string_view SyncModeName(SyncMode m) noexcept {
  switch (m) {
    case SyncMode::kGroup: return "group";
    case SyncMode::kPeriodic: return "periodic";
    case SyncMode::kNone: return "none";
  }
  return "unknown";
}

Result<SyncMode> ParseSyncMode(std::string_view text) {
  if (text == "group") return SyncMode::kGroup;
  if (text == "periodic") return SyncMode::kPeriodic;
  if (text == "none") return SyncMode::kNone;
  return Status(Code::kInvalidArgument, "sync mode must be group, periodic or none");
}

std::string RecoveryReport::Summary() const {
  std::string s = "recovered " + std::to_string(records_replayed) + " WAL records from " +
                  std::to_string(segments) + " segment(s) in " + std::to_string(elapsed_ms) +
                  " ms; next seq " + std::to_string(next_seq);
  if (torn_tail) s += "; dropped a torn tail of " + std::to_string(torn_bytes_dropped) + " bytes in " + torn_file;
  if (!salvage_problem.empty()) {
    s += "; SALVAGE dropped " + std::to_string(salvage_bytes_dropped) + " bytes after: " + salvage_problem;
  }
  return s;
}

struct Durability::Impl {
  Impl(Ledger& l, DurabilityOptions o) : ledger(l), opt(std::move(o)) {}

  Ledger& ledger;
  DurabilityOptions opt;
  std::unique_ptr<wal::SegmentWriter> writer;

  std::atomic<uint64_t> round{0};     // last round started
  std::atomic<uint64_t> durable{0};   // last round acknowledgeable
  std::atomic<uint64_t> events{0};    // bumped on every publication and on failure: waiters sleep on it
  std::atomic<bool> failed{false};
  mutable std::mutex failure_mu;
  Status failure;

  std::atomic<bool> stop{false};
  mutable std::atomic<bool> wake{false};
  mutable std::mutex wake_mu;
  mutable std::condition_variable wake_cv;

  std::function<void(uint64_t)> on_durable;
  std::thread thread;

  mutable std::mutex stats_mu;
  Stats stats;

  void Wakeup() const {
    if (!wake.exchange(true)) {
      { std::lock_guard lock(wake_mu); }   // orders with the writer's predicate check
      wake_cv.notify_one();
    }
  }

  void Fail(const Status& st) {
    {
      std::lock_guard lock(failure_mu);
      if (failure.ok()) failure = st;
    }
    failed.store(true);
    events.fetch_add(1);
    events.notify_all();
    if (on_durable) on_durable(durable.load());
  }

  void Run();
};

void Durability::Impl::Run() {
  std::string batch;
  batch.reserve(1 << 20);
  auto last_sync = std::chrono::steady_clock::now();
  const auto interval = std::chrono::milliseconds(opt.sync_interval_ms);
  for (;;) {
    const bool stopping = stop.load();
    wake.store(false);
    const uint64_t r = round.fetch_add(1) + 1;
    batch.clear();
    ledger.CollectLog(batch);
    if (batch.empty() && !stopping) {
      // Nothing to write: publish the (empty) round so tickets taken now complete, then sleep
      // until a shard gets a record (or the periodic sync is due).
      if (!failed.load()) {
        durable.store(r);
        events.fetch_add(1);
        events.notify_all();
      }
      std::unique_lock lock(wake_mu);
      if (opt.sync == SyncMode::kPeriodic) {
        wake_cv.wait_for(lock, interval, [&] { return wake.load() || stop.load(); });
      } else {
        wake_cv.wait(lock, [&] { return wake.load() || stop.load(); });
      }
      if (opt.sync == SyncMode::kPeriodic && !failed.load() &&
          std::chrono::steady_clock::now() - last_sync >= interval) {
        if (Status st = writer->Sync(); !st.ok()) Fail(st);
        last_sync = std::chrono::steady_clock::now();
      }
      continue;
    }
    if (failed.load()) {
      // Keep draining so memory stays bounded; nothing is acknowledged any more.
      if (stopping) return;
      continue;
    }
    uint64_t records = 0;
    ForEachBufferedRecord(batch, [&](uint8_t type, std::string_view payload) {
      writer->Append(type, payload);
      ++records;
    });
    Status st = writer->Flush();
    uint64_t sync_us = 0;
    const bool sync_now = opt.sync == SyncMode::kGroup || stopping ||
                          (opt.sync == SyncMode::kPeriodic && std::chrono::steady_clock::now() - last_sync >= interval);
    if (st.ok() && sync_now) {
      const auto t0 = std::chrono::steady_clock::now();
      st = writer->Sync();
      last_sync = std::chrono::steady_clock::now();
      sync_us = uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(last_sync - t0).count());
    }
    if (!st.ok()) {
      Fail(st);
      continue;
    }
    {
      std::lock_guard lock(stats_mu);
      ++stats.rounds;
      stats.records += records;
      stats.bytes += batch.size();
      stats.last_batch_records = records;
      if (sync_now) {
        ++stats.syncs;
        stats.last_sync_us = sync_us;
        stats.max_sync_us = std::max(stats.max_sync_us, sync_us);
      }
    }
    durable.store(r);
    events.fetch_add(1);
    events.notify_all();
    if (on_durable) on_durable(r);
    if (stopping) {
      // One more pass after the final round cannot find anything new: stop was set before this
      // round started collecting, and callers stop mutating before destroying the Durability.
      return;
    }
  }
}

Durability::Durability(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Durability::~Durability() {
  impl_->stop.store(true);
  impl_->Wakeup();
  if (impl_->thread.joinable()) impl_->thread.join();
  if (!impl_->failed.load()) (void)impl_->writer->Close();
}

Result<std::unique_ptr<Durability>> Durability::Open(Ledger& ledger, DurabilityOptions options,
                                                     RecoveryReport* report_out) {
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) return Status(Code::kIOError, "cannot create data directory " + options.data_dir + ": " + ec.message());

  RecoveryReport report;
  uint64_t replayed = 0;
  Result<wal::ScanReport> scan = wal::ScanWal(
      options.data_dir, wal::kFromOldest, options.salvage ? wal::RecoverMode::kSalvage : wal::RecoverMode::kStrict,
      [&](const wal::Frame& f) -> Status {
        Status st = ledger.ApplyLogRecord(f.type, f.payload);
        if (!st.ok()) {
          return Status(Code::kCorruption, "WAL record seq " + std::to_string(f.seq) + " at offset " +
                                               std::to_string(f.offset) + " does not apply: " + st.ToString());
        }
        ++replayed;
        return Status();
      });
  if (!scan.ok()) return scan.status();
  if (scan->needs_repair()) {
    if (Status st = wal::ApplyRecoveryCut(*scan); !st.ok()) return st;
  }
  report.segments = scan->segments_seen;
  report.records_replayed = replayed;
  report.next_seq = scan->next_seq;
  report.torn_tail = scan->torn_tail;
  if (scan->cut.has_value()) {
    report.torn_bytes_dropped = scan->cut->dropped_bytes;
    report.torn_file = scan->cut->path;
  }
  if (!scan->salvage_problem.ok()) {
    report.salvage_problem = scan->salvage_problem.ToString();
    report.salvage_bytes_dropped = scan->dropped_bytes;
  }

  auto impl = std::make_unique<Impl>(ledger, options);
  wal::WriterOptions wopt;
  wopt.segment_target_bytes = options.segment_bytes;
  wopt.fs = options.fs;
  Result<std::unique_ptr<wal::SegmentWriter>> writer = wal::SegmentWriter::Open(options.data_dir, scan->next_seq, wopt);
  if (!writer.ok()) return writer.status();
  impl->writer = std::move(*writer);

  Impl* raw = impl.get();
  ledger.SetLogWakeup([raw] { raw->Wakeup(); });
  ledger.EnableLog();
  raw->thread = std::thread([raw] { raw->Run(); });
  report.elapsed_ms = uint64_t(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
  if (report_out != nullptr) *report_out = report;
  return std::unique_ptr<Durability>(new Durability(std::move(impl)));
}

uint64_t Durability::Ticket() const noexcept { return impl_->round.load(std::memory_order_seq_cst) + 1; }

bool Durability::IsDurable(uint64_t ticket) const noexcept { return impl_->durable.load() >= ticket; }

uint64_t Durability::durable_round() const noexcept { return impl_->durable.load(); }

void Durability::RequestDurable(uint64_t ticket) const {
  if (impl_->durable.load() < ticket) impl_->Wakeup();
}

Status Durability::WaitDurable(uint64_t ticket) const {
  RequestDurable(ticket);
  for (;;) {
    const uint64_t seen = impl_->events.load();
    if (impl_->durable.load() >= ticket) return Status();
    if (impl_->failed.load()) return status();
    impl_->events.wait(seen);
  }
}

void Durability::SetOnDurable(std::function<void(uint64_t)> callback) { impl_->on_durable = std::move(callback); }

Status Durability::status() const {
  if (!impl_->failed.load()) return Status();
  std::lock_guard lock(impl_->failure_mu);
  return Status(Code::kUnavailable, "the write-ahead log failed: " + impl_->failure.ToString());
}

Durability::Stats Durability::stats() const {
  std::lock_guard lock(impl_->stats_mu);
  return impl_->stats;
}

}  // namespace genledger
