// Loading snapshot files into an empty ledger: used by recovery and by genledger-inspect.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "genledger/ledger.h"
#include "genledger/status.h"
#include "snapshot/snapshot_file.h"
#include "ledger/ledger_log.h"

namespace genledger {

// Loads every shard section of the snapshot at `path` into `ledger` in a single pass over the
// file, which also makes every check snapshot::VerifySnapshot makes (header, each section's CRC,
// footer counts, whole-file CRC, nothing after the footer): no separate verification read is
// needed. (*skip_upto)[shard] receives each section's record number (the WAL records recovery
// must skip), *sections the section count. *summary (optional) receives exactly what
// VerifySnapshot(path) would have reported, whatever happened to the loading.
// Requires: `ledger` is empty and logging is off; skip_upto and sections non-null.
// Returns Ok iff the file verified and every shard loaded. Otherwise, in this order:
//  - the file failed verification: its verdict (kCorruption naming the file and offset, kIOError,
//    kNotFound), also in summary->verdict. A damaged file is damaged whatever its content, so this
//    wins over any error of the content found before the damage.
//  - the file verified (summary->ok()) but this build cannot load it: kInvalidArgument for another
//    shard count; kCorruption naming the file and offset for an unexpected, repeated, misplaced
//    or missing shard section (or part), a shard over LedgerLog::kMaxShardStateBytes, or a payload
//    the ledger rejects.
// On error the ledger may be partly loaded - a bad whole-file CRC is only found at the footer,
// after every section was loaded - and must be discarded or reset (LedgerLog::ResetForRecovery).
Status LoadSnapshot(Ledger& ledger, const std::string& path, std::vector<uint64_t>* skip_upto, uint64_t* sections,
                    snapshot::SnapshotSummary* summary = nullptr);

// Writes shard `shard`'s payload (LedgerLog::SnapshotShard) as its sections: pieces of at most
// max_section_bytes (0: snapshot::kMaxSectionBytes), the last one a LedgerLog::kShardStateSection and
// any before it LedgerLog::kShardStatePartSection, all with `record_no` (docs/snapshot-format.md,
// "Section types"). A payload that fits one section is written as one kShardStateSection, as
// before parts existed. Errors: the writer's.
Status WriteShardSections(snapshot::SnapshotWriter& writer, uint32_t shard, uint64_t record_no,
                          std::string_view payload, uint64_t max_section_bytes = 0);

// What LoadNewestValidSnapshot did.
struct SnapshotRecovery {
  // The snapshot now in the ledger, if any (its summary: path, covered seq, sections, ...).
  std::optional<snapshot::SnapshotSummary> chosen;
  // Newer snapshots whose file failed verification (snapshot::VerifySnapshot's verdict), newest
  // first; left on disk.
  std::vector<snapshot::SnapshotSummary> rejected;
  // Per shard: the records the chosen snapshot contains (empty without a chosen snapshot).
  std::vector<uint64_t> skip_upto;
  // Where WAL replay starts: chosen->covered_seq + 1, or 1 when no snapshot verified (not
  // wal::kFromOldest: the oldest remaining segment may start after records that were trimmed).
  uint64_t replay_from_seq() const noexcept { return chosen ? chosen->covered_seq + 1 : 1; }
};

// Start-up's snapshot step: loads into `ledger` the newest snapshot of `dir` whose file verifies,
// reading each candidate once. Candidates are tried newest first; one whose file fails
// verification (even at its last byte, after all of it was loaded) is recorded in `rejected`,
// the ledger is emptied (LedgerLog::ResetForRecovery) and the next older one is tried: the newest
// snapshot that verifies is chosen, as a separate verification pass would choose it.
// Requires: `ledger` is empty and logging is off.
// Guarantees on success: the ledger holds exactly the chosen snapshot's state (nothing of any
// rejected one), or is empty when none verified.
// Errors: listing errors (kNotFound / kIOError); the LoadSnapshot error of a snapshot whose file
// verifies but cannot be loaded (another shard count, a payload the ledger rejects): start-up
// must stop rather than silently fall back past a good file. On error the ledger may be partly
// loaded and must be discarded.
Result<SnapshotRecovery> LoadNewestValidSnapshot(Ledger& ledger, const std::string& dir);

}  // namespace genledger
