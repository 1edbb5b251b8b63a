// Group commit (docs/durability.md): the WAL writer thread and the tickets a caller waits on.
// Recovery (Durability::Open) is in durability_recovery.cc, snapshots in durability_snapshot.cc,
// the state they share (Durability::Impl) in durability_impl.h.
//
// Why Ticket() = round + 1 is sound. The writer runs rounds: it first increments `round`, then
// collects the log lanes, each inside that lane's lock (LedgerLog::CollectLog). A mutation appends
// its record inside its lane's lock; its caller reads `round` after the mutation returned,
// getting r, and waits for round r + 1. Let Q be the first round whose lane critical section
// comes after the append's: Q takes the record. Round Q-1's critical section on that lane came
// before the append's, and round Q-1's increment came before that critical section in the
// writer's program order, so the increment happens-before the caller's read: r >= Q-1, and the
// round that takes the record is Q <= r + 1. (A round also takes every record of the same shard
// before this one, CollectLog's guarantee, so acknowledging it never exposes a record whose
// predecessor could still be lost.)
//
// The same bound covers anything a caller has *observed*, not only what it changed: a record it
// saw the effect of (a refusal because a charge is already refunded, a balance read by a GET) was
// appended under the shard lock the caller then took, so the append happens-before the caller's
// read of `round` just as the caller's own append would. That is why every answer derived from
// ledger state may take Ticket() after its ledger call and wait for it (docs/durability.md).
//
// Why Ticket() = round (no + 1) when `wake` reads false. A record R observed by the caller sits in
// a lane whose buffer was empty when its first record F (F = R, or a record before R in that lane)
// was appended; F's append called the wakeup, wake.exchange(true), inside the lane lock, and that
// happens-before the caller's read of `wake`. Reading false means some writer's wake.store(false)
// comes after F's exchange in `wake`'s modification order, so that round's collection of the lane
// comes after F's append (had it come before, the store would happen-before the exchange) and it,
// or an earlier round after F, took R. The writer numbers a round before clearing `wake`, and the
// caller's load of `wake` synchronises with that store, so the caller then reads `round` >= that
// round. This is what lets an idle WAL (writer asleep, everything published) answer a read at once
// instead of waking the writer for an empty round.
#include "genledger/durability.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

#include "durability/durability_impl.h"
#include "ledger/ledger_log.h"
#include "log/log.h"

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

// Keeps the writer thread alive through exceptions (std::thread would terminate the process):
// the first one fails the log, then the rounds go on discarding records, as after an I/O error.
void Durability::Impl::Run() {
  for (;;) {
    try {
      RunRounds();
      return;
    } catch (const std::exception& e) {
      FailFromException(e.what());
    } catch (...) {
      FailFromException("unknown exception");
    }
    if (stop.load()) return;
  }
}

void Durability::Impl::RunRounds() {
  std::string batch;
  batch.reserve(1 << 20);
  auto last_sync = std::chrono::steady_clock::now();
  const auto interval = std::chrono::milliseconds(opt.sync_interval_ms);
  for (;;) {
    const bool stopping = stop.load();
    // The round is numbered before `wake` is cleared: a caller that reads `wake` as false then
    // reads a round number at least this one (Ticket()'s second case relies on it).
    const uint64_t r = round.fetch_add(1) + 1;
    wake.store(false);
    // After clearing `wake`: a request queued from here on also sets it, so it is not slept on.
    ProcessDeletions();
    batch.clear();
    if (Status st = LedgerLog::CollectLog(ledger, batch); !st.ok()) {
      Fail(Status(Code::kUnavailable, "the log's record order could not be restored: " + st.ToString()));
    }
    if (batch.empty() && !stopping) {
      // Nothing to write: publish the (empty) round so tickets taken now complete, then sleep
      // until a shard gets a record (or the periodic sync is due).
      if (!failed.load()) PublishSynced(r);
      if (!failed.load()) {
        durable.store(r);
        events.fetch_add(1);
        events.notify_all();
        NotifyDurable(r);   // a ticket may name exactly this empty round (tickets are conservative)
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
    in_flight_since_ns.store(std::chrono::steady_clock::now().time_since_epoch().count());
    uint64_t records = 0;
    LedgerLog::ForEachBufferedRecord(batch, [&](uint8_t type, std::string_view payload) {
      writer->Append(type, payload);
      ++records;
    });
    Status st = writer->Flush();
    if (st.ok()) written_seq.store(writer->flushed_seq());
    uint64_t sync_us = 0;
    const bool sync_now = opt.sync == SyncMode::kGroup || stopping || sync_request.load() > synced.load() ||
                          (opt.sync == SyncMode::kPeriodic && std::chrono::steady_clock::now() - last_sync >= interval);
    if (st.ok() && sync_now) {
      const auto t0 = std::chrono::steady_clock::now();
      st = writer->Sync();
      last_sync = std::chrono::steady_clock::now();
      sync_us = uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(last_sync - t0).count());
      if (opt.slow_sync_log_ms != 0 && sync_us >= uint64_t(opt.slow_sync_log_ms) * 1000) {
        static log::RateLimit limit(10'000);
        const uint64_t now_ms = uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             last_sync.time_since_epoch()).count());
        if (uint64_t held = 0; limit.Allow(now_ms, &held)) {
          log::Warn("slow fdatasync: {} ms for {} records ({} more slow syncs not logged)", sync_us / 1000,
                    records, held);
        }
      }
    }
    if (!st.ok()) {
      Fail(st);
      continue;
    }
    PublishSynced(r);
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
    in_flight_since_ns.store(0);
    events.fetch_add(1);
    events.notify_all();
    NotifyDurable(r);
    if (stopping) {
      // One more pass after the final round cannot find anything new: stop was set before this
      // round started collecting, and callers stop mutating before destroying the Durability.
      return;
    }
  }
}

Durability::Durability(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Durability::~Durability() {
  // The snapshot thread first: it may be waiting for the writer to delete segments.
  {
    std::lock_guard lock(impl_->snap_wait_mu);
    impl_->snap_stop = true;
  }
  impl_->snap_wait_cv.notify_all();
  if (impl_->snapshot_thread.joinable()) impl_->snapshot_thread.join();
  impl_->stop.store(true);
  impl_->Wakeup();
  if (impl_->thread.joinable()) impl_->thread.join();
  const bool closed = !impl_->failed.load() && impl_->writer->Close().ok();
  impl_->writer_stopped = true;
  // After the final round: this snapshot covers everything, so the next start replays nothing.
  if (closed && impl_->opt.snapshot_interval_s != 0) (void)impl_->TakeSnapshot();
}

uint64_t Durability::Ticket() const noexcept {
  // `wake` first, then `round` (see the comment at the top of this file).
  const bool pending = impl_->wake.load(std::memory_order_seq_cst);
  const uint64_t r = impl_->round.load(std::memory_order_seq_cst);
  return pending ? r + 1 : r;
}

uint64_t Durability::UnsyncedAgeMs() const noexcept {
  const int64_t since = impl_->in_flight_since_ns.load();
  if (since == 0) return 0;
  const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  return now > since ? uint64_t(now - since) / 1'000'000 : 0;
}

bool Durability::IsDurable(uint64_t ticket) const noexcept { return impl_->durable.load() >= ticket; }


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

void Durability::SetOnDurable(std::function<void(uint64_t)> callback) {
  std::lock_guard lock(impl_->on_durable_mu);
  impl_->on_durable = std::move(callback);
}

Status Durability::status() const {
  if (!impl_->failed.load()) return Status();
  return impl_->FailureStatus();
}

Durability::Stats Durability::stats() const {
  std::lock_guard lock(impl_->stats_mu);
  return impl_->stats;
}

}  // namespace genledger
