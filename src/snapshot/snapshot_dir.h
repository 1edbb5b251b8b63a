// The snapshots of a directory: listing, retention, and which WAL segments the kept snapshots
// make unnecessary (choosing the newest valid one while loading it: src/durability/snapshot_load.h). Rules: docs/snapshot-format.md.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "genledger/status.h"
#include "snapshot/snapshot_file.h"
#include "wal/segment_reader.h"

namespace genledger::snapshot {

struct SnapshotName {
  std::string path;          // dir + "/" + file name
  uint64_t covered_seq = 0;  // from the name (the header is checked against it when read)
};

struct SnapshotListing {
  std::vector<SnapshotName> snapshots;  // sorted by covered_seq, ascending
  // "snap-*.snap.tmp" file names: a snapshot being written, or a crash leftover. Never read.
  std::vector<std::string> temp_files;
  // "snap-*.snap" names that are not well formed. Never read, never deleted; worth logging.
  std::vector<std::string> malformed;
};

// Lists the snapshots of `dir`; ignores unrelated names. Errors: kNotFound if `dir` does not
// exist, kIOError otherwise. Thread-safe.
Result<SnapshotListing> ListSnapshots(const std::string& dir);

// Removes every "snap-*.snap.tmp" file of `dir` and fsyncs the directory; returns the removed
// names. Requires: no SnapshotWriter is open on `dir` (its file would be removed under it).
// Errors: kIOError (files removed before the error stay removed). Thread-safe.
Result<std::vector<std::string>> RemoveStaleTempFiles(const std::string& dir);

struct RetentionReport {
  std::vector<SnapshotSummary> kept;      // the newest `keep` valid snapshots, newest first
  std::vector<SnapshotSummary> rejected;  // damaged snapshots newer than the oldest kept; left
  std::vector<std::string> deleted;       // paths removed (older than the oldest kept)
  // True when `keep` valid snapshots were found, so older ones were deleted.
  bool complete = false;
  // The smallest covered seq among the kept snapshots when complete; 0 otherwise, meaning "no
  // WAL segment may be deleted" (see WalSegmentsCoveredBy).
  uint64_t min_kept_covered_seq = 0;
};

// Keeps the newest `keep` valid snapshots of `dir`. Only when that many verified does it delete
// every snapshot file older than the oldest kept one (valid or not) and fsync the directory;
// otherwise it deletes nothing. Damaged snapshots newer than that are left and reported; .tmp
// and malformed names are never touched.
// Requires: keep >= 1 (kInvalidArgument otherwise); no other retention or cleanup runs on `dir`.
// A writer may be open (its .tmp is ignored; a snapshot it renames in afterwards is newer than
// anything deleted). Errors: kNotFound / kIOError from listing or removing (removals before the
// error stay done). Thread-safe with respect to readers.
Result<RetentionReport> KeepNewest(const std::string& dir, size_t keep);

// Which WAL segments every kept snapshot covers, i.e. may be deleted. `segment_first_seqs` are
// the first seqs of the WAL's segments (wal::ListSegments order); `min_covered_seq` is
// RetentionReport::min_kept_covered_seq. Segment i may go iff it is not the newest and
// segment_first_seqs[i + 1] - 1 <= min_covered_seq; the result is the prefix of such segments
// (indices 0 .. n-1 of the input, as first seqs). min_covered_seq == 0 yields nothing.
// Errors: kInvalidArgument if the seqs are not strictly increasing. Thread-safe (pure).
Result<std::vector<uint64_t>> WalSegmentsCoveredBy(std::span<const uint64_t> segment_first_seqs,
                                                   uint64_t min_covered_seq);

// The same over a wal::ListSegments result: the segments that may be deleted, oldest first. This
// layer does not delete them: only the WAL's owner knows no scan or writer still needs them.
Result<std::vector<wal::SegmentName>> WalSegmentsCoveredBy(const wal::SegmentListing& listing,
                                                           uint64_t min_covered_seq);

}  // namespace genledger::snapshot
