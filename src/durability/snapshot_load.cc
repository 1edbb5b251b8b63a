#include "durability/snapshot_load.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <concurrentqueue/blockingconcurrentqueue.h>

#include "snapshot/format.h"
#include "snapshot/snapshot_dir.h"
#include "snapshot/snapshot_file.h"
#include "ledger/ledger_log.h"

namespace genledger {

// The reading thread checks each section's checksum and hands the payload to a worker (decoding a
// shard is independent of every other shard), through bounded queues so at most a few sections
// are in memory at once. The read is VerifySnapshot's own, so the file is checked as it is loaded.
Status LoadSnapshot(Ledger& ledger, const std::string& path, std::vector<uint64_t>* skip_upto, uint64_t* sections,
                    snapshot::SnapshotSummary* summary_out) {
  skip_upto->assign(Ledger::ShardCount(), 0);
  std::vector<bool> seen(Ledger::ShardCount(), false);

  struct Task {
    uint16_t shard = 0;
    uint64_t record_no = 0, offset = 0;
    std::string payload;
  };
  constexpr int kInFlight = 8;
  std::vector<Task> tasks(kInFlight);
  moodycamel::BlockingConcurrentQueue<Task*> todo, free;
  for (Task& t : tasks) free.enqueue(&t);
  std::mutex error_mu;
  Status worker_error;                     // guarded by error_mu
  std::atomic<bool> worker_failed{false};
  std::vector<std::thread> pool;
  auto start_workers = [&] {
    const unsigned workers = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
    for (unsigned i = 0; i < workers; ++i) {
      pool.emplace_back([&] {
        for (Task* t = nullptr;;) {
          todo.wait_dequeue(t);
          if (t == nullptr) return;
          Status st = LedgerLog::LoadShardSection(ledger, t->shard, t->record_no, t->payload);
          if (!st.ok()) {
            std::lock_guard lock(error_mu);
            if (worker_error.ok()) {
              worker_error = Status(st.code(), path + ": offset " + std::to_string(t->offset) + ": " + st.ToString());
            }
            worker_failed.store(true, std::memory_order_relaxed);
          }
          free.enqueue(t);
        }
      });
    }
  };

  // Errors of the content, as opposed to the file's, are kept aside and the callbacks return Ok,
  // so the read goes on to the footer and the file's own verdict is always known: a file that
  // fails verification is rejected (recovery falls back to an older snapshot) whatever its
  // content, exactly as when it was verified before being loaded.
  Status content_error;
  auto on_header = [&](const snapshot::SnapshotHeader& h) {
    if (h.shard_count != Ledger::ShardCount()) {
      content_error = Status(Code::kInvalidArgument, path + " was written with " + std::to_string(h.shard_count) +
                                                         " shards; this build has " + std::to_string(Ledger::ShardCount()));
      return;
    }
    start_workers();
  };
  // A split shard's parts so far (docs/snapshot-format.md, "Section types"): they must be
  // followed by more pieces of the same shard and record number, ending with its shard_state.
  std::string parts;
  bool in_parts = false;
  uint16_t parts_shard = 0;
  uint64_t parts_record_no = 0, parts_offset = 0;
  // The catalog section (type 4), if any: first in the file, with shard 0's record_no.
  bool any_section = false;
  std::optional<uint64_t> catalog_record_no;
  auto on_section = [&](const snapshot::SectionView& sec) -> Status {
    // After a content error only verification remains: loading more would be wasted.
    if (!content_error.ok() || worker_failed.load(std::memory_order_relaxed)) return Status();
    const bool first = !any_section;
    any_section = true;
    if (sec.type == LedgerLog::kCatalogSection && first && sec.shard == 0) {
      // Loaded here, before any shard is handed to a worker: holds of a version-1 payload are
      // priced with it, and the workers read it after taking their task from the queue.
      if (Status st = LedgerLog::LoadCatalogSection(ledger, sec.payload); !st.ok()) {
        content_error = Status(Code::kCorruption, path + ": offset " + std::to_string(sec.offset) + ": " + st.ToString());
      }
      catalog_record_no = sec.record_no;
      return Status();
    }
    const bool piece = sec.type == LedgerLog::kShardStateSection || sec.type == LedgerLog::kShardStatePartSection;
    const bool continues = in_parts && sec.shard == parts_shard && sec.record_no == parts_record_no;
    if (piece && sec.shard == 0 && catalog_record_no && *catalog_record_no != sec.record_no) {
      content_error = Status(Code::kCorruption, path + ": offset " + std::to_string(sec.offset) +
                                                    ": shard 0's record_no " + std::to_string(sec.record_no) +
                                                    " differs from the catalog section's " +
                                                    std::to_string(*catalog_record_no));
      return Status();
    }
    if (!piece || sec.shard >= Ledger::ShardCount() || seen[sec.shard] || (in_parts && !continues) ||
        parts.size() + sec.payload.size() > LedgerLog::kMaxShardStateBytes) {
      content_error = Status(Code::kCorruption, path + ": offset " + std::to_string(sec.offset) +
                                                    ": unexpected section (type " + std::to_string(sec.type) +
                                                    ", shard " + std::to_string(sec.shard) + ")");
      return Status();
    }
    if (sec.type == LedgerLog::kShardStatePartSection) {
      if (!in_parts) parts_offset = sec.offset;
      in_parts = true;
      parts_shard = sec.shard;
      parts_record_no = sec.record_no;
      parts.append(sec.payload);
      return Status();
    }
    seen[sec.shard] = true;
    (*skip_upto)[sec.shard] = sec.record_no;
    Task* t = nullptr;
    free.wait_dequeue(t);
    t->shard = sec.shard;
    t->record_no = sec.record_no;
    t->offset = in_parts ? parts_offset : sec.offset;
    if (in_parts) {
      t->payload.swap(parts);
      t->payload.append(sec.payload);
      parts.clear();
      in_parts = false;
    } else {
      t->payload.assign(sec.payload);
    }
    todo.enqueue(t);
    return Status();
  };
  snapshot::SnapshotSummary summary = snapshot::VerifySnapshot(path, on_header, on_section);
  for (size_t i = 0; i < pool.size(); ++i) todo.enqueue(nullptr);
  for (auto& th : pool) th.join();
  if (summary_out != nullptr) *summary_out = summary;
  if (!summary.ok()) return summary.verdict;
  if (!content_error.ok()) return content_error;
  if (!worker_error.ok()) return worker_error;
  *sections = summary.section_count;
  if (in_parts) {
    return Status(Code::kCorruption, path + ": offset " + std::to_string(parts_offset) + ": the parts of shard " +
                                         std::to_string(parts_shard) + " are not followed by its shard_state");
  }
  for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
    if (!seen[i]) return Status(Code::kCorruption, path + ": no section for shard " + std::to_string(i));
  }
  return Status();
}

Status WriteShardSections(snapshot::SnapshotWriter& writer, uint32_t shard, uint64_t record_no,
                          std::string_view payload, uint64_t max_section_bytes) {
  const uint64_t max = max_section_bytes == 0 ? snapshot::kMaxSectionBytes
                                              : std::min<uint64_t>(max_section_bytes, snapshot::kMaxSectionBytes);
  while (payload.size() > max) {
    if (Status st = writer.AddSection(LedgerLog::kShardStatePartSection, uint16_t(shard), record_no, payload.substr(0, max));
        !st.ok()) {
      return st;
    }
    payload.remove_prefix(max);
  }
  return writer.AddSection(LedgerLog::kShardStateSection, uint16_t(shard), record_no, payload);
}

Result<SnapshotRecovery> LoadNewestValidSnapshot(Ledger& ledger, const std::string& dir) {
  auto listing = snapshot::ListSnapshots(dir);
  if (!listing.ok()) return listing.status();
  SnapshotRecovery out;
  const auto& snaps = listing->snapshots;
  for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
    std::vector<uint64_t> skip_upto;
    uint64_t sections = 0;
    snapshot::SnapshotSummary summary;
    Status st = LoadSnapshot(ledger, it->path, &skip_upto, &sections, &summary);
    if (st.ok()) {
      out.chosen = std::move(summary);
      out.skip_upto = std::move(skip_upto);
      return out;
    }
    // An intact file this build cannot load is not "damaged": falling back past it would hide
    // the newest acknowledged state behind an older one, so start-up stops.
    if (summary.ok()) return st;
    out.rejected.push_back(std::move(summary));
    // Whatever the rejected file put in the ledger (up to all of it) must not mix with the next.
    if (Status reset = LedgerLog::ResetForRecovery(ledger); !reset.ok()) return reset;
  }
  return out;
}

}  // namespace genledger
