// Private to src/durability/durability*.cc: Durability::Impl, the state shared by the WAL writer
// thread (durability.cc), the snapshotter (durability_snapshot.cc) and recovery
// (durability_recovery.cc, which builds it).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "genledger/durability.h"
#include "log/log.h"
#include "wal/segment_reader.h"
#include "wal/segment_writer.h"

namespace genledger {

// An exclusive flock on DATA_DIR/LOCK, released when the holder goes away (or the process dies).
class DirLock {
 public:
  static Result<std::shared_ptr<DirLock>> Acquire(const std::string& dir);
  ~DirLock();
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

}  // namespace genledger
