// Group commit and recovery (docs/durability.md).
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

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "snapshot/snapshot_dir.h"
#include "snapshot/snapshot_file.h"
#include "wal/file.h"

#include "durability/parallel_replay.h"
#include "log/log.h"
#include "durability/snapshot_load.h"
#include "log/log.h"
#include "wal/segment_reader.h"
#include "wal/segment_writer.h"
#include "ledger/ledger_log.h"

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
  if (snapshot_path.empty()) {
    s += "; no snapshot";
  } else {
    s += "; from snapshot " + snapshot_path + " (covered seq " + std::to_string(snapshot_covered_seq) + ", " +
         std::to_string(snapshot_sections) + " sections, loaded in " + std::to_string(snapshot_load_ms) +
         " ms), skipped " + std::to_string(records_skipped) + " records it contained";
  }
  for (const std::string& r : snapshots_rejected) s += "; REJECTED snapshot " + r;
  return s;
}

// An exclusive flock on DATA_DIR/LOCK, released when the holder goes away (or the process dies).
class DirLock {
 public:
  static Result<std::shared_ptr<DirLock>> Acquire(const std::string& dir) {
    const std::string path = dir + "/LOCK";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Status(Code::kIOError, "cannot open " + path + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return Status(Code::kUnavailable, "data directory " + dir + " is in use by another genledger process");
      }
      return Status(Code::kIOError, "cannot lock " + path + ": " + std::strerror(err));
    }
    return std::shared_ptr<DirLock>(new DirLock(fd));
  }
  ~DirLock() { ::close(fd_); }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

struct Durability::Impl {
  Impl(Ledger& l, DurabilityOptions o) : ledger(l), opt(std::move(o)) {}

  std::shared_ptr<DirLock> dir_lock;   // held for the Durability's whole life

  Ledger& ledger;
  DurabilityOptions opt;
  std::unique_ptr<wal::SegmentWriter> writer;

  std::atomic<uint64_t> round{0};     // last round started
  std::atomic<uint64_t> durable{0};   // last round acknowledgeable
  // Last round whose records are all fdatasynced (== durable in group mode), and the round a
  // snapshot needs synced before it may finish (in periodic and none mode it forces a sync).
  std::atomic<uint64_t> synced{0};
  std::atomic<uint64_t> sync_request{0};
  std::atomic<uint64_t> events{0};    // bumped on every publication and on failure: waiters sleep on it
  std::atomic<bool> failed{false};
  // steady_clock nanoseconds at which the round being written started, 0 while none is: what
  // /healthz reports as the age of the oldest unsynced round (a hung fdatasync shows up here).
  std::atomic<int64_t> in_flight_since_ns{0};
  mutable std::mutex failure_mu;
  Status failure;

  std::atomic<bool> stop{false};
  mutable std::atomic<bool> wake{false};
  mutable std::mutex wake_mu;
  mutable std::condition_variable wake_cv;

  // Set and cleared while the writer runs (a server sets it after start and clears it before its
  // threads go away), so calls and changes are serialised.
  std::mutex on_durable_mu;
  std::function<void(uint64_t)> on_durable;
  void NotifyDurable(uint64_t round) {
    std::lock_guard lock(on_durable_mu);
    if (on_durable) on_durable(round);
  }
  std::thread thread;

  // Last WAL seq handed to the OS by the writer: a snapshot started after reading it contains
  // every record up to it (those were collected from the shards before the read).
  std::atomic<uint64_t> written_seq{0};

  // Snapshots (docs/durability.md, "Snapshots"). snapshot_mu serialises them.
  std::mutex snapshot_mu;
  std::optional<uint64_t> last_snapshot_seq;   // guarded by snapshot_mu
  std::string snapshot_buf;                    // guarded by snapshot_mu; reused across shards
  std::thread snapshot_thread;
  std::mutex snap_wait_mu;
  std::condition_variable snap_wait_cv;
  bool snap_stop = false;                      // guarded by snap_wait_mu
  bool writer_stopped = false;                 // set by the destructor once the writer is gone

  // WAL segments to delete, handed to the writer thread: only it knows which segment it is
  // appending to, and deleting between its rounds never races a rotation.
  std::mutex del_mu;
  std::vector<wal::SegmentName> del_pending;   // guarded by del_mu
  uint64_t del_requested = 0;                  // guarded by del_mu
  Status del_status;                           // guarded by del_mu
  std::atomic<uint64_t> del_done{0};

  void DeleteSegments(const std::vector<wal::SegmentName>& segs, Status* st);
  void ProcessDeletions();
  Status TakeSnapshot();
  void SnapshotLoop();

  mutable std::mutex stats_mu;
  Stats stats;

  void Wakeup() const {
    if (!wake.exchange(true)) {
      { std::lock_guard lock(wake_mu); }   // orders with the writer's predicate check
      wake_cv.notify_one();
    }
  }

  Status FailureStatus() const {
    std::lock_guard lock(failure_mu);
    return Status(Code::kUnavailable, "the write-ahead log failed: " + failure.ToString());
  }

  // Writer thread, after round r's records were written: publishes r as synced if nothing
  // written is unsynced, syncing first when a snapshot asked for it.
  void PublishSynced(uint64_t r) {
    if (writer->durable_seq() != writer->flushed_seq() && sync_request.load() > synced.load()) {
      if (Status st = writer->Sync(); !st.ok()) {
        Fail(st);
        return;
      }
    }
    if (writer->durable_seq() == writer->flushed_seq()) synced.store(r);
  }

  // Blocks until every record collected by round `ticket` (Ticket() semantics) is fdatasynced,
  // whatever the sync mode. kUnavailable if the log fails first. Requires the writer running.
  Status WaitSynced(uint64_t ticket) {
    for (uint64_t cur = sync_request.load(); cur < ticket && !sync_request.compare_exchange_weak(cur, ticket);) {
    }
    Wakeup();
    for (;;) {
      const uint64_t seen = events.load();
      if (synced.load() >= ticket) return Status();
      if (failed.load()) return FailureStatus();
      events.wait(seen);
    }
  }

  // An exception escaped a round (an allocation, a file layer, the on-durable callback): the log
  // can no longer say what is on disk, so it fails for good, exactly like a failed fdatasync.
  void FailFromException(const char* what) {
    const Status st(Code::kIOError, std::string("exception in the WAL writer thread: ") + what);
    log::Error("{}", st.ToString());
    try {
      Fail(st);
    } catch (...) {   // the on-durable callback threw again; the failure is recorded regardless
    }
  }

  void Fail(const Status& st) {
    {
      std::lock_guard lock(failure_mu);
      if (!failure.ok()) return;   // logged and published once; the cause is sticky
      failure = st;
    }
    log::Error("WAL failed, no change can be acknowledged until a restart: {}", st.ToString());
    failed.store(true);
    events.fetch_add(1);
    events.notify_all();
    NotifyDurable(durable.load());
  }

  void Run();
  void RunRounds();
};

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

void Durability::Impl::DeleteSegments(const std::vector<wal::SegmentName>& segs, Status* st) {
  uint64_t deleted = 0;
  for (const wal::SegmentName& seg : segs) {
    std::error_code ec;
    if (std::filesystem::remove(seg.path, ec)) ++deleted;
    if (ec && st->ok()) *st = Status(Code::kIOError, "cannot delete WAL segment " + seg.path + ": " + ec.message());
  }
  if (deleted > 0) {
    wal::FileSystem* fs = opt.fs != nullptr ? opt.fs : wal::FileSystem::Default();
    if (Status d = fs->SyncDir(opt.data_dir); !d.ok() && st->ok()) *st = d;
  }
  std::lock_guard lock(stats_mu);
  stats.segments_deleted += deleted;
}

void Durability::Impl::ProcessDeletions() {
  std::vector<wal::SegmentName> segs;
  uint64_t requested;
  {
    std::lock_guard lock(del_mu);
    if (del_requested == del_done.load()) return;
    segs.swap(del_pending);
    requested = del_requested;
  }
  // Never the segment being appended to (the list never names the newest one either: this is
  // the writer's own guard against a list computed from a stale directory listing).
  const std::string current = std::filesystem::path(writer->current_segment_path()).filename().string();
  const std::optional<uint64_t> current_first = wal::ParseSegmentFileName(current);
  std::erase_if(segs, [&](const wal::SegmentName& seg) { return !current_first || seg.first_seq >= *current_first; });
  Status st;
  DeleteSegments(segs, &st);
  {
    std::lock_guard lock(del_mu);
    if (!st.ok() && del_status.ok()) del_status = st;
  }
  del_done.store(requested);
  del_done.notify_all();
}

Status Durability::Impl::TakeSnapshot() {
  std::lock_guard guard(snapshot_mu);
  if (failed.load()) return Status(Code::kUnavailable, "the write-ahead log failed; no snapshot");
  const auto t0 = std::chrono::steady_clock::now();
  // Read before copying any shard: every record <= covered was collected from its shard before
  // this load, so its effect is in the copy. Later records may be too; recovery skips those by
  // per-shard record number.
  const uint64_t covered = written_seq.load();
  if (last_snapshot_seq == covered) return Status();   // nothing new in the WAL
  auto fail = [&](const Status& st) {
    log::Error("snapshot at WAL seq {} failed: {}; the WAL is kept", covered, st.ToString());
    std::lock_guard lock(stats_mu);
    ++stats.snapshot_failures;
    stats.last_snapshot_error = st.ToString();
    return st;
  };
  snapshot::SnapshotWriterOptions wo;
  wo.fs = opt.fs;
  auto w = snapshot::SnapshotWriter::Open(opt.data_dir, covered, Ledger::ShardCount(), wo);
  if (!w.ok()) return fail(w.status());
  uint64_t max_hold_ns = 0;
  for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
    uint64_t record_no = 0, hold_ns = 0;
    Status st = LedgerLog::SnapshotShard(ledger, i, snapshot_buf, &record_no, &hold_ns);
    if (st.ok()) st = WriteShardSections(**w, i, record_no, snapshot_buf, opt.snapshot_section_bytes);
    if (!st.ok()) return fail(st);   // the writer's destructor removes the temporary file
    max_hold_ns = std::max(max_hold_ns, hold_ns);
  }
  // The copy may contain records not yet on disk (it contains every record applied before each
  // shard's hold). Finishing before they are would let a power cut keep the snapshot but lose the
  // WAL records: state nobody was told about, and a WAL that no longer continues the snapshot.
  // So wait for everything applied up to now to be fdatasynced; if the log fails meanwhile, the
  // records never became durable and the snapshot is abandoned. (Once the writer has stopped,
  // its Close synced everything.)
  if (!writer_stopped) {
    if (Status st = WaitSynced(round.load() + 1); !st.ok()) return fail(st);
  }
  if (Status st = (*w)->Finish(); !st.ok()) return fail(st);
  last_snapshot_seq = covered;
  const uint64_t bytes = (*w)->file_bytes();
  if (snapshot_buf.capacity() > (size_t{8} << 20)) std::string().swap(snapshot_buf);
  {
    std::lock_guard lock(stats_mu);
    ++stats.snapshots;
    stats.last_snapshot_ms = uint64_t(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
    stats.last_snapshot_bytes = bytes;
    stats.last_max_shard_hold_us = max_hold_ns / 1000;
    stats.max_shard_hold_us = std::max(stats.max_shard_hold_us, max_hold_ns / 1000);
    stats.last_snapshot_covered_seq = covered;
  }
  log::Info("snapshot written: covers WAL seq {}, {} bytes, {} ms", covered, bytes,
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());

  // Retention, then the WAL that every kept snapshot covers.
  auto kept = snapshot::KeepNewest(opt.data_dir, std::max<uint32_t>(1, opt.snapshots_kept));
  if (!kept.ok()) return kept.status();
  if (!kept->complete) return Status();
  auto listing = wal::ListSegments(opt.data_dir);
  if (!listing.ok()) return listing.status();
  auto covered_segs = snapshot::WalSegmentsCoveredBy(*listing, kept->min_kept_covered_seq);
  if (!covered_segs.ok()) return covered_segs.status();
  if (covered_segs->empty()) return Status();
  if (writer_stopped) {
    Status st;
    DeleteSegments(*covered_segs, &st);
    return st;
  }
  uint64_t ticket;
  {
    std::lock_guard lock(del_mu);
    del_pending.insert(del_pending.end(), covered_segs->begin(), covered_segs->end());
    ticket = ++del_requested;
  }
  Wakeup();
  for (uint64_t done = del_done.load(); done < ticket; done = del_done.load()) del_done.wait(done);
  std::lock_guard lock(del_mu);
  return std::exchange(del_status, Status());
}

void Durability::Impl::SnapshotLoop() {
  std::unique_lock lock(snap_wait_mu);
  for (;;) {
    snap_wait_cv.wait_for(lock, std::chrono::seconds(opt.snapshot_interval_s), [&] { return snap_stop; });
    if (snap_stop) return;
    lock.unlock();
    (void)TakeSnapshot();   // failures are counted in the stats; the WAL keeps everything
    lock.lock();
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


Status Durability::Snapshot() { return impl_->TakeSnapshot(); }

Result<std::unique_ptr<Durability>> Durability::Open(Ledger& ledger, DurabilityOptions options,
                                                     RecoveryReport* report_out) {
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) return Status(Code::kIOError, "cannot create data directory " + options.data_dir + ": " + ec.message());
  // One process per data directory: a second one would interleave segments and truncate the
  // first one's "torn tail" while it is being written. Taken before recovery changes anything.
  auto lock = DirLock::Acquire(options.data_dir);
  if (!lock.ok()) return lock.status();

  RecoveryReport report;
  std::optional<uint64_t> snapshot_seq;
  std::vector<uint64_t> skip_upto;   // per shard: records the snapshot already contains
  uint64_t from_seq = wal::kFromOldest;
  {
    // One read per candidate: the newest snapshot is verified as it is loaded, and if it turns
    // out damaged (possibly at its last byte) the ledger is emptied and the next older one tried
    // (snapshot_load.h). The time covers the rejected candidates too.
    const auto l0 = std::chrono::steady_clock::now();
    Result<SnapshotRecovery> found = LoadNewestValidSnapshot(ledger, options.data_dir);
    if (!found.ok()) return found.status();
    for (const snapshot::SnapshotSummary& r : found->rejected) {
      report.snapshots_rejected.push_back(r.path + ": " + r.verdict.ToString());
    }
    // No snapshot at all: the WAL is complete from its oldest segment. A rejected one may have
    // let older segments be deleted, so then replay must start at seq 1 or fail loudly.
    if (found->chosen || !found->rejected.empty()) from_seq = found->replay_from_seq();
    if (found->chosen) {
      skip_upto = std::move(found->skip_upto);
      snapshot_seq = found->chosen->covered_seq;
      report.snapshot_path = found->chosen->path;
      report.snapshot_covered_seq = *snapshot_seq;
      report.snapshot_sections = found->chosen->section_count;
      report.snapshot_load_ms = uint64_t(
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - l0).count());
    }
  }
  // Replay on both cores: each shard's records go to one worker, in order (parallel_replay.h).
  ParallelReplayer replayer(ledger, skip_upto, std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
  Result<wal::ScanReport> scan = wal::ScanWal(
      options.data_dir, from_seq, options.salvage ? wal::RecoverMode::kSalvage : wal::RecoverMode::kStrict,
      [&](const wal::Frame& f) -> Status { return replayer.Add(f); });
  if (Status st = replayer.Finish(); !st.ok()) return st;
  const uint64_t replayed = replayer.replayed(), skipped = replayer.skipped();
  if (!scan.ok()) return scan.status();
  if (scan->needs_repair()) {
    if (Status st = wal::ApplyRecoveryCut(*scan); !st.ok()) return st;
  }
  report.segments = scan->segments_seen;
  report.records_replayed = replayed;
  report.records_skipped = skipped;
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

  // Left by a snapshot interrupted by a crash; nothing can be writing them now.
  if (auto removed = snapshot::RemoveStaleTempFiles(options.data_dir); removed.ok()) {
    report.stale_snapshot_temps_removed = removed->size();
  }

  auto impl = std::make_unique<Impl>(ledger, options);
  impl->dir_lock = std::move(*lock);
  impl->written_seq.store(scan->next_seq - 1);
  impl->last_snapshot_seq = snapshot_seq;
  wal::WriterOptions wopt;
  wopt.segment_target_bytes = options.segment_bytes;
  wopt.fs = options.fs;
  Result<std::unique_ptr<wal::SegmentWriter>> writer = wal::SegmentWriter::Open(options.data_dir, scan->next_seq, wopt);
  if (!writer.ok()) return writer.status();
  impl->writer = std::move(*writer);

  Impl* raw = impl.get();
  LedgerLog::SetLogWakeup(ledger, [raw] { raw->Wakeup(); });
  LedgerLog::EnableLog(ledger);
  raw->thread = std::thread([raw] { raw->Run(); });
  if (options.snapshot_interval_s != 0) raw->snapshot_thread = std::thread([raw] { raw->SnapshotLoop(); });
  report.elapsed_ms = uint64_t(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
  if (report_out != nullptr) *report_out = report;
  return std::unique_ptr<Durability>(new Durability(std::move(impl)));
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
