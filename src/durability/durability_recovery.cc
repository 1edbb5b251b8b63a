// Recovery (docs/durability.md, "Recovery"): Durability::Open takes the data directory's lock,
// loads the newest valid snapshot, replays the WAL after it, repairs a torn tail, and starts the
// writer and snapshot threads.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "durability/durability_impl.h"
#include "durability/parallel_replay.h"
#include "durability/snapshot_load.h"
#include "ledger/ledger_log.h"
#include "snapshot/snapshot_dir.h"
#include "snapshot/snapshot_file.h"
#include "wal/segment_reader.h"
#include "wal/segment_writer.h"

namespace genledger {

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

Result<std::shared_ptr<DirLock>> DirLock::Acquire(const std::string& dir) {
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

DirLock::~DirLock() { ::close(fd_); }

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

}  // namespace genledger
