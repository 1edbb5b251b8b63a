#include "snapshot/snapshot_dir.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "wal/file.h"

namespace genledger::snapshot {
namespace {

using wal::ErrnoStatus;

bool IsTempName(std::string_view name) {
  return name.starts_with(kSnapshotPrefix) &&
         name.ends_with(std::string(kSnapshotSuffix) + std::string(kTempSuffix));
}

Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("remove", path, errno);
  return Status::Ok();
}

}  // namespace

Result<SnapshotListing> ListSnapshots(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus("open directory", dir, errno);
  SnapshotListing out;
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name(e->d_name);
    if (auto seq = ParseSnapshotFileName(name)) {
      out.snapshots.push_back(SnapshotName{wal::JoinPath(dir, name), *seq});
    } else if (IsTempName(name)) {
      out.temp_files.emplace_back(name);
    } else if (name.starts_with(kSnapshotPrefix) && name.ends_with(kSnapshotSuffix)) {
      out.malformed.emplace_back(name);
    }
    errno = 0;
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoStatus("read directory", dir, err);
  std::sort(out.snapshots.begin(), out.snapshots.end(),
            [](const SnapshotName& a, const SnapshotName& b) {
              return a.covered_seq < b.covered_seq;
            });
  std::sort(out.temp_files.begin(), out.temp_files.end());
  std::sort(out.malformed.begin(), out.malformed.end());
  return out;
}

Result<std::vector<std::string>> RemoveStaleTempFiles(const std::string& dir) {
  auto listing = ListSnapshots(dir);
  if (!listing.ok()) return listing.status();
  std::vector<std::string> removed;
  for (const std::string& name : listing->temp_files) {
    Status s = RemoveFile(wal::JoinPath(dir, name));
    if (!s.ok()) return s;
    removed.push_back(name);
  }
  // Without it a crash could bring the leftovers back; harmless, but the caller asked.
  if (!removed.empty()) {
    Status s = wal::SyncDir(dir);
    if (!s.ok()) return s;
  }
  return removed;
}

Result<RetentionReport> KeepNewest(const std::string& dir, size_t keep) {
  if (keep == 0) {
    return Status(Code::kInvalidArgument, "snapshot retention must keep at least one snapshot");
  }
  auto listing = ListSnapshots(dir);
  if (!listing.ok()) return listing.status();
  const auto& snaps = listing->snapshots;
  RetentionReport out;
  // Index (in the ascending listing) of the oldest kept snapshot.
  size_t oldest_kept = snaps.size();
  for (size_t i = snaps.size(); i-- > 0 && out.kept.size() < keep;) {
    SnapshotSummary summary = VerifySnapshot(snaps[i].path);
    if (summary.ok()) {
      out.kept.push_back(std::move(summary));
      oldest_kept = i;
    } else {
      out.rejected.push_back(std::move(summary));
    }
  }
  if (out.kept.size() < keep) return out;  // not enough proven copies: delete nothing

  out.complete = true;
  out.min_kept_covered_seq = out.kept.back().covered_seq;
  for (size_t i = 0; i < oldest_kept; ++i) {
    Status s = RemoveFile(snaps[i].path);
    if (!s.ok()) return s;
    out.deleted.push_back(snaps[i].path);
  }
  if (!out.deleted.empty()) {
    Status s = wal::SyncDir(dir);
    if (!s.ok()) return s;
  }
  return out;
}

Result<std::vector<uint64_t>> WalSegmentsCoveredBy(std::span<const uint64_t> segment_first_seqs,
                                                   uint64_t min_covered_seq) {
  for (size_t i = 1; i < segment_first_seqs.size(); ++i) {
    if (segment_first_seqs[i] <= segment_first_seqs[i - 1]) {
      return Status(Code::kInvalidArgument, "WAL segment first seqs are not strictly increasing");
    }
  }
  std::vector<uint64_t> out;
  if (min_covered_seq == 0) return out;
  // Stops before the newest segment: its last seq is whatever the writer appends next.
  for (size_t i = 0; i + 1 < segment_first_seqs.size(); ++i) {
    if (segment_first_seqs[i + 1] - 1 > min_covered_seq) break;
    out.push_back(segment_first_seqs[i]);
  }
  return out;
}

Result<std::vector<wal::SegmentName>> WalSegmentsCoveredBy(const wal::SegmentListing& listing,
                                                           uint64_t min_covered_seq) {
  std::vector<uint64_t> firsts;
  firsts.reserve(listing.segments.size());
  for (const auto& s : listing.segments) firsts.push_back(s.first_seq);
  auto covered = WalSegmentsCoveredBy(firsts, min_covered_seq);
  if (!covered.ok()) return covered.status();
  return std::vector<wal::SegmentName>(listing.segments.begin(),
                                       listing.segments.begin() +
                                           static_cast<std::ptrdiff_t>(covered->size()));
}

}  // namespace genledger::snapshot
