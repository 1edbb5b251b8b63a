// The snapshotter (docs/durability.md, "Snapshots"): writes a snapshot of the ledger, keeps the
// newest ones and has the WAL segments every kept snapshot covers deleted by the writer thread.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "durability/durability_impl.h"
#include "durability/snapshot_load.h"
#include "ledger/ledger_log.h"
#include "snapshot/snapshot_dir.h"
#include "snapshot/snapshot_file.h"
#include "wal/file.h"
#include "wal/segment_reader.h"

namespace genledger {

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
    // The catalog is copied with shard 0 and written first (docs/snapshot-format.md, type 4).
    LedgerLog::CatalogCopy catalog;
    Status st = LedgerLog::SnapshotShard(ledger, i, snapshot_buf, &record_no, &hold_ns, i == 0 ? &catalog : nullptr);
    if (st.ok() && i == 0) {
      st = (*w)->AddSection(LedgerLog::kCatalogSection, 0, record_no, LedgerLog::EncodeCatalogSection(catalog));
    }
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

Status Durability::Snapshot() { return impl_->TakeSnapshot(); }

}  // namespace genledger
