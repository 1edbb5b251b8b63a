// The write-ahead log and snapshot plumbing of genledger::Ledger (records:
// docs/wal-records.md; payloads: docs/snapshot-format.md). Private to the library: the durability
// layer (src/durability), genledger-inspect, tests, benchmarks and fuzzers use it; a server's
// request path only sees include/genledger/ledger.h. Modelled on LevelDB's WriteBatchInternal:
// a friend class of only static functions, each taking the ledger as its first argument.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "genledger/ledger.h"
#include "genledger/status.h"

namespace genledger {

class LedgerLog {
 public:
  LedgerLog() = delete;

  // The ledger's opaque state (src/ledger/ledger_impl.h), named for the ledger's own .cc files
  // and the tests that read its shard layout.
  using Impl = Ledger::Impl;

  // --- Write-ahead log hooks (records: docs/wal-records.md) ---

  // From now on every mutation also appends its record to a log lane (held by the mutating
  // thread), under the shard lock that applied it. Requires: called before any mutation, once.
  static void EnableLog(Ledger& ledger);
  // Called, on the mutating thread and under a shard lock, whenever an empty log lane gets a
  // record: the log writer's "there is work" signal. Must be cheap and must not call into the
  // ledger. Set before EnableLog.
  static void SetLogWakeup(Ledger& ledger, std::function<void()> wakeup);
  // Moves every pending record to the end of `out`, each as [type u8][payload length u32 LE]
  // [payload] (ForEachBufferedRecord parses that). The records of one shard come out in the order
  // they were applied, and a record comes out no earlier than every record of its shard before it
  // (so writing each call's output whole keeps the log a serial order). kCorruption if that
  // order cannot be restored, which only a bug can cause: the caller must then stop
  // acknowledging. Thread-safe; meant for one log writer.
  static Status CollectLog(Ledger& ledger, std::string& out);
  // CollectLog, then emit(type, payload) for each record it moved.
  static Status DrainLog(Ledger& ledger, const std::function<void(uint8_t type, std::string_view payload)>& emit);
  // Applies one record's effect, as recovery does. Requires the records of each shard in order.
  // kCorruption (nothing applied) for a malformed record or one that does not fit the state.
  static Status ApplyLogRecord(Ledger& ledger, uint8_t type, std::string_view payload);
  // ApplyLogRecord for each record in order, with the cache misses of the batch overlapped
  // (recovery is bound by memory latency, like charging). Stops at the first failure;
  // *applied receives how many were applied. Requires: no other thread mutates the shards the
  // batch touches (recovery gives each shard to one thread).
  struct LogRecordView {
    uint8_t type;
    std::string_view payload;
  };
  static Status ApplyLogBatch(Ledger& ledger, std::span<const LogRecordView> records, size_t* applied);

  // --- Snapshots (payload layout: docs/snapshot-format.md, "Section payloads") ---

  // Section types of a shard's state (docs/snapshot-format.md): its payload is the parts'
  // payloads, if any, then the kShardStateSection's, which ends the shard.
  static constexpr uint8_t kShardStateSection = 1;
  static constexpr uint8_t kShardStatePartSection = 2;
  // The largest payload of one shard (docs/snapshot-format.md, "Section types").
  static constexpr uint64_t kMaxShardStateBytes = uint64_t{64} << 30;

  // Replaces `out` with shard `shard`'s state as one kShardStateSection payload and sets
  // *record_no to the shard's per-shard record number at the copy: the copy contains the effect
  // of exactly the shard's records 1..*record_no. Holds only that shard's lock, for the
  // encoding; *lock_hold_ns (optional) receives how long. Thread-safe, callable during traffic.
  // Errors: kInvalidArgument for a shard >= ShardCount(); kCapacityExhausted if the payload
  // would exceed kMaxShardStateBytes (checked on the shard's measured size before the encoding
  // takes the lock, and again after). The payload may exceed one snapshot section: the caller
  // splits it (docs/snapshot-format.md).
  // `catalog` (optional, shard 0 only: kInvalidArgument otherwise) receives the ledger's catalog
  // and version as of the same hold, so that it matches *record_no (docs/snapshot-format.md,
  // section type 4: catalog replacements are shard-0 records).
  struct CatalogCopy {
    std::shared_ptr<const Catalog> catalog;
    uint64_t version = 0;
  };
  static Status SnapshotShard(const Ledger& ledger, uint32_t shard, std::string& out, uint64_t* record_no,
                              uint64_t* lock_hold_ns = nullptr, CatalogCopy* catalog = nullptr);

  // --- The catalog (WAL type 20: docs/wal-records.md, "Catalog records"; snapshot section 4) ---

  static constexpr uint8_t kCatalogSection = 4;
  // The catalog section's payload for a copy made by SnapshotShard(0, ..., &copy).
  static std::string EncodeCatalogSection(const CatalogCopy& copy);
  // Installs a catalog section's catalog and version (the caller checks that it comes first and
  // that its record_no is shard 0's). Requires logging off. kCorruption, nothing changed, for a
  // payload that does not decode, a version of 0 or a catalog this build refuses (named).
  static Status LoadCatalogSection(Ledger& ledger, std::string_view payload);
  // False while the ledger's catalog is the one it was constructed with: no type-20 record, no
  // catalog section and no replacement. After recovery: the data directory had no catalog.
  static bool CatalogReplaced(const Ledger& ledger);
  // Logs the current catalog as a type-20 record under its current version (1), which makes
  // the data directory's catalog authoritative from then on (AdoptStartupCatalog). Requires
  // logging on. kInvalidArgument if the catalog was already replaced or loaded (it is logged).
  static Status LogStartupCatalog(Ledger& ledger);
  // Whether recovery must apply a record alone, at its place in the file, after every record
  // before it and before any after it (type 20: the catalog; parallel_replay.h).
  static bool IsReplayBarrier(uint8_t type) noexcept;

  // --- Minted tokens (WAL types 26-27; snapshot extension block 5, shard 0 only:
  // docs/snapshot-format.md, "Extension block 5"; src/ledger/ledger_tokens.cc) ---

  // Appends block 5's bytes (without the block's tag and length) for the token table.
  // Requires shard 0's lock held: call it inside SnapshotShard(0)'s hold, so the block matches
  // shard 0's record_no.
  static void EncodeTokensBlock(const Ledger& ledger, std::string& out);
  // Replaces the token table with a block's content (loading shard 0's payload). Requires
  // logging off. kCorruption, nothing changed, for a block that does not decode.
  static Status LoadTokensBlock(Ledger& ledger, std::string_view block);

  // Installs a payload made by SnapshotShard into shard `shard`, whose log position becomes
  // `record_no` (the next record replayed for it must be record_no + 1).
  // Requires: the shard is empty (nothing created, applied or loaded) and logging is off.
  // Guarantees: all or nothing - on error the shard is left untouched.
  // Errors: kCorruption for any malformed or inconsistent payload (docs/snapshot-format.md,
  // "Validation when loading"); kInvalidArgument for a bad shard or a non-empty shard.
  static Status LoadShardSection(Ledger& ledger, uint32_t shard, uint64_t record_no, std::string_view payload);

  // Snapshot extension block 2 (alerts and the event outbox; docs/snapshot-format.md) of shard
  // `shard` on its own, for tests of the block (SnapshotShard / LoadShardSection carry it in
  // the payload). SnapshotAlerts takes the shard's lock; LoadAlerts requires the shard's
  // workspaces loaded and logging off (kCorruption, nothing changed, for a bad block;
  // kInvalidArgument for a bad shard).
  static Status SnapshotAlerts(const Ledger& ledger, uint32_t shard, std::string& out);
  static Status LoadAlerts(Ledger& ledger, uint32_t shard, std::string_view block);
  // Snapshot extension block 3's body, usage history (docs/snapshot-format.md; ledger_usage.cc),
  // alone, for tests (SnapshotShard and LoadShardSection write and read it inside the payload).
  // Encode takes the shard's lock; Decode requires the shard's workspaces, users and holds
  // loaded and no history yet, and is all or nothing.
  static void EncodeUsageBlock(const Ledger& ledger, uint32_t shard, std::string& out);
  static Status DecodeUsageBlock(Ledger& ledger, uint32_t shard, std::string_view block);
  // Test hook: forgets every workspace's usage history and the holds' model slots.
  static void DropUsageHistory(Ledger& ledger);

  // Throws away everything the ledger holds, leaving it as if freshly constructed with the same
  // catalog and options (the log wakeup, if set, is kept). Recovery needs it: it loads a snapshot
  // in the same pass that verifies it, so a snapshot found damaged late in the file has already
  // filled part of the ledger, which must be emptied before an older snapshot is tried.
  // Requires: no other thread uses the ledger during the call, and nothing obtained from it
  // before (there is nothing: reads return copies) is relied on afterwards.
  // Errors: kInvalidArgument, with nothing changed, once EnableLog has been called - from then on
  // the state may have been acknowledged to clients and must never be discarded.
  static Status ResetForRecovery(Ledger& ledger);

  // The shard and per-shard record number a WAL record payload starts with (recovery uses them
  // to skip records a snapshot already contains). False if the payload is too short. Pure.
  static bool ParseLogRecordPrefix(std::string_view payload, uint32_t* shard, uint64_t* record_no) noexcept;


  // Calls emit(type, payload) for each record of a CollectLog buffer, in order.
  static void ForEachBufferedRecord(std::string_view buffer,
                                    const std::function<void(uint8_t type, std::string_view payload)>& emit);
};

}  // namespace genledger
