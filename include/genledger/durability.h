// Durability: the write-ahead log's group-commit writer, and recovery at start-up.
//
// A Durability owns a data directory and one writer thread. Mutations of the ledger append their
// records to log lanes (under the shard lock that applied them); the writer repeatedly collects
// every lane (Ledger::CollectLog), writes the records as one batch and calls fdatasync once, then
// publishes the batch's round number. A caller that made a mutation takes a Ticket() afterwards and may
// acknowledge the mutation once IsDurable(ticket) (or WaitDurable). See docs/durability.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "genledger/ledger.h"
#include "genledger/status.h"

namespace genledger {

namespace wal {
class FileSystem;
}

enum class SyncMode : uint8_t {
  kGroup,     // acknowledge after fdatasync (default; nothing acknowledged is ever lost)
  kPeriodic,  // acknowledge after write(2); fdatasync every sync_interval_ms (may lose that much)
  kNone,      // acknowledge after write(2); never fdatasync until shutdown (tests/benchmarks only)
};
std::string_view SyncModeName(SyncMode m) noexcept;
Result<SyncMode> ParseSyncMode(std::string_view text);   // "group", "periodic", "none"

struct DurabilityOptions {
  std::string data_dir = "./genledger-data";
  SyncMode sync = SyncMode::kGroup;
  uint32_t sync_interval_ms = 10;
  uint64_t segment_bytes = 64ull << 20;
  // Recover the valid prefix of a corrupted log instead of refusing to start.
  bool salvage = false;
  // Test hook: where files are created (fault injection). nullptr = the real file system.
  wal::FileSystem* fs = nullptr;
  // Seconds between automatic snapshots (docs/durability.md, "Snapshots"); 0 turns automatic
  // snapshots off, including the one at clean shutdown (Snapshot() still works).
  uint32_t snapshot_interval_s = 300;
  // Valid snapshots kept; WAL segments are deleted only once every kept snapshot covers them.
  uint32_t snapshots_kept = 2;
  // Test hook: the largest snapshot section written (0: the format's kMaxSectionBytes), so a
  // test can make a shard span several sections without hundreds of MiB of state.
  uint64_t snapshot_section_bytes = 0;
  // An fdatasync taking at least this long is logged (warning, at most one line per 10 s);
  // 0 turns the log line off.
  uint32_t slow_sync_log_ms = 1000;
};

// What start-up found and did.
struct RecoveryReport {
  uint64_t segments = 0;
  uint64_t records_replayed = 0;
  uint64_t next_seq = 1;            // the WAL sequence number the writer continues at
  bool torn_tail = false;
  uint64_t torn_bytes_dropped = 0;  // bytes cut from the newest segment's torn tail
  std::string torn_file;
  std::string salvage_problem;      // salvage mode: the corruption that was skipped over
  uint64_t salvage_bytes_dropped = 0;
  uint64_t elapsed_ms = 0;
  // The snapshot recovery started from (empty path: none; the whole WAL was replayed).
  std::string snapshot_path;
  uint64_t snapshot_covered_seq = 0;
  uint64_t snapshot_sections = 0;
  // Time to find and load the snapshot: one read per candidate that both verifies and loads it,
  // so it includes the verification and any newer candidates rejected on the way.
  uint64_t snapshot_load_ms = 0;
  // WAL records after the covered seq that the snapshot already contained (per-shard skip).
  uint64_t records_skipped = 0;
  // Newer snapshots that failed verification and were passed over, each "<path>: <why>".
  std::vector<std::string> snapshots_rejected;
  uint64_t stale_snapshot_temps_removed = 0;
  std::string Summary() const;      // one human-readable line
};

class Durability {
 public:
  // Recovers `ledger` from options.data_dir (creating it if missing): loads the newest snapshot
  // that verifies (one read each; a damaged one is passed over and the ledger reset, see
  // docs/durability.md), replays the WAL after it into the ledger, truncates a torn tail, then
  // opens a new segment and starts the writer thread, and turns on the ledger's logging.
  // Requires: `ledger` is empty and has not logged anything; it outlives the Durability. It may
  // be reset (Ledger::ResetForRecovery) during the call.
  // Errors: kCorruption naming the file and offset (unless salvage), kIOError, kInvalidArgument.
  static Result<std::unique_ptr<Durability>> Open(Ledger& ledger, DurabilityOptions options,
                                                  RecoveryReport* report = nullptr);

  // Stops the writer after a final write and fdatasync of everything pending.
  ~Durability();
  Durability(const Durability&) = delete;
  Durability& operator=(const Durability&) = delete;

  // The round after which every mutation that has returned by now is acknowledgeable, and so is
  // every state a ledger call that has returned by now observed (a refusal or a read is derived
  // from records other callers appended: it may be answered once this ticket is durable). With
  // nothing pending (writer idle) it is a round already durable, so such answers need no wait.
  // Thread-safe, wait-free (two atomic loads).
  uint64_t Ticket() const noexcept;
  // Whether `ticket` is acknowledgeable (durable in kGroup mode, written otherwise).
  bool IsDurable(uint64_t ticket) const noexcept;
  // Makes sure the writer will run the round `ticket` names even if no new record arrives (a
  // ticket is conservative: it may name the round after the one that writes its records).
  // Returns at once; IsDurable or the SetOnDurable callback tells when it is done. Thread-safe.
  void RequestDurable(uint64_t ticket) const;
  // RequestDurable, then blocks until IsDurable(ticket) or the log fails. Returns ok, or
  // kUnavailable with the cause.
  Status WaitDurable(uint64_t ticket) const;
  // How long the round being written (the oldest not yet acknowledgeable) has been in flight,
  // in milliseconds; 0 while the writer is idle. A hung fdatasync makes it grow. Thread-safe.
  uint64_t UnsyncedAgeMs() const noexcept;

  // Called on the writer thread after each round becomes acknowledgeable (and once on failure).
  // Must be cheap and must not call SetOnDurable. May be set or cleared (empty function) at any
  // time; once SetOnDurable returns, the previous callback is no longer running or called.
  void SetOnDurable(std::function<void(uint64_t round)> callback);

  // Ok while the log works; after a failed write or sync, the sticky cause (no mutation can be
  // acknowledged any more; what was acknowledged before is on disk).
  Status status() const;

  // Writes a snapshot now (docs/durability.md, "Snapshots"): covers every WAL record written so
  // far, then applies retention and has the writer delete the WAL segments every kept snapshot
  // covers. Before the file is made durable, waits until every record the copy contains is
  // fdatasynced (forcing a sync in periodic and none mode), so a snapshot never holds the only copy
  // of a record; if the log fails meanwhile the snapshot is abandoned (kUnavailable).
  // Blocks for the duration; snapshots are serialised (a concurrent call waits). Holds
  // one ledger shard at a time, briefly; mutations continue meanwhile. Ok without writing when
  // nothing was written to the WAL since the last snapshot. Thread-safe, but not concurrently
  // with the destructor.
  // Errors: kUnavailable if the log has failed; kIOError / kInvalidArgument from writing the
  // file (the previous snapshots and the WAL are then untouched); kCapacityExhausted for a shard
  // over kMaxShardStateBytes (a shard over one section is split: docs/snapshot-format.md). Every
  // failure is counted (stats().snapshot_failures) and logged. A retention or deletion error after a durable snapshot is
  // returned too (the snapshot stays; only clean-up was incomplete).
  Status Snapshot();

  // Statistics for metrics: rounds written, records, bytes, and the last fsync time.
  struct Stats {
    uint64_t rounds = 0, records = 0, bytes = 0, syncs = 0;
    uint64_t last_sync_us = 0, max_sync_us = 0, last_batch_records = 0;
    // Snapshots written, failed, the last one's duration and size, the longest time any shard
    // lock was held to copy a shard (over all snapshots), WAL segments deleted.
    uint64_t snapshots = 0, snapshot_failures = 0, last_snapshot_ms = 0, last_snapshot_bytes = 0;
    uint64_t max_shard_hold_us = 0, last_max_shard_hold_us = 0, segments_deleted = 0;
    uint64_t last_snapshot_covered_seq = 0;
    std::string last_snapshot_error;
  };
  Stats stats() const;

 private:
  // Opaque state, defined in src/durability/durability.cc.
  struct Impl;
  explicit Durability(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The start-up rule of the catalog (docs/pricing.md, "Changing the catalog while running"), for a
// server right after Durability::Open: the data directory's catalog, which Open restored into
// `ledger`, is authoritative. A data directory with no catalog of its own (new, or written before
// the live catalog) first gets the ledger's start-up catalog logged as its version 1, so that it
// has one from now on. Then `given` (the --catalog file's; null when none was given), if it
// differs from the current catalog (as Catalog::ToJson), is applied as the next version and
// logged. Waits until what it logged is durable. Returns one line saying what it did, for the
// start-up log. Requires: `durability` was opened on `ledger`. Errors: ReplaceCatalog's, the log's.
Result<std::string> AdoptStartupCatalog(Ledger& ledger, Durability& durability, std::shared_ptr<const Catalog> given);

}  // namespace genledger
