#include "inspect/inspect.h"

#include <algorithm>
#include <map>
#include <thread>
#include <vector>

#include "durability/parallel_replay.h"
#include "durability/snapshot_load.h"
#include "genledger/ledger.h"
#include "ledger/log_record.h"
#include "ledger/log_record_text.h"
#include "snapshot/snapshot_dir.h"
#include "snapshot/snapshot_file.h"
#include "wal/file.h"
#include "wal/segment_reader.h"

namespace genledger::inspect {

namespace json = boost::json;

namespace {

json::value LimitValue(uint64_t v) { return v == kUnlimited ? json::value(nullptr) : json::value(v); }

// Reads one segment to its end: counts, records by type, and how it ends.
json::object ScanSegment(const std::string& path, bool newest) {
  json::object seg;
  seg["file"] = path;
  auto reader = wal::SegmentReader::Open(path);
  if (!reader.ok()) {
    // The newest segment cut inside its header holds no record: recovery cuts it as a torn tail.
    auto size = wal::FileSize(path);
    const bool torn = newest && size.ok() && *size < wal::kSegmentHeaderSize;
    seg["verdict"] = torn ? "torn tail" : "corrupt";
    seg["error"] = reader.status().ToString();
    if (torn) seg["valid_bytes"] = 0;
    seg["records_by_type"] = json::object();   // InspectDir sums it over every segment
    return seg;
  }
  wal::SegmentReader& r = **reader;
  seg["first_seq"] = r.first_seq();
  seg["bytes"] = r.file_size();
  std::map<std::string, uint64_t> by_type;
  uint64_t frames = 0;
  wal::Frame f;
  while (r.Next(&f)) {
    ++frames;
    ++by_type[std::string(ledger::RecordTypeName(f.type))];
  }
  seg["frames"] = frames;
  seg["last_seq"] = r.last_seq();
  json::object types;
  for (const auto& [name, n] : by_type) types[name] = n;
  seg["records_by_type"] = std::move(types);
  if (!r.io_status().ok()) {
    seg["verdict"] = "unreadable";
    seg["error"] = r.io_status().ToString();
  } else if (r.error() == wal::FrameError::kNone) {
    seg["verdict"] = "ok";
  } else {
    const bool later = r.FindLaterValidFrame().has_value();
    seg["verdict"] = (newest && !later) ? "torn tail" : "corrupt";
    seg["error"] = std::string(wal::FrameErrorName(r.error())) + " at offset " + std::to_string(r.end_offset());
    seg["valid_bytes"] = r.end_offset();
  }
  return seg;
}

json::object TotalsJson(const LedgerTotals& t) {
  return json::object{{"workspaces", t.workspaces},
                      {"users", t.users},
                      {"used", t.used},
                      {"reserved", t.reserved},
                      {"limits", t.limits},
                      {"unlimited_workspaces", t.unlimited_workspaces},
                      {"open_reservations", t.open_reservations},
                      {"idempotency_entries", t.idempotency_entries}};
}

}  // namespace

Result<json::object> InspectDir(const std::string& dir) {
  json::object out;
  out["data_dir"] = dir;
  bool clean = true;
  std::vector<std::string> problems;

  auto snaps = snapshot::ListSnapshots(dir);
  if (!snaps.ok()) return snaps.status();
  json::array snap_rows;
  for (const auto& s : snaps->snapshots) {
    const snapshot::SnapshotSummary v = snapshot::VerifySnapshot(s.path);
    snap_rows.push_back(json::object{{"file", s.path},
                                     {"covered_seq", v.covered_seq},
                                     {"created_ms", v.created_ms},
                                     {"sections", v.section_count},
                                     {"bytes", v.file_bytes},
                                     {"verdict", v.verdict.ok() ? "ok" : v.verdict.ToString()}});
  }
  out["snapshots"] = std::move(snap_rows);

  auto segs = wal::ListSegments(dir);
  if (!segs.ok()) return segs.status();
  json::array seg_rows;
  std::map<std::string, uint64_t> by_type;
  for (size_t i = 0; i < segs->segments.size(); ++i) {
    json::object seg = ScanSegment(segs->segments[i].path, i + 1 == segs->segments.size());
    for (const auto& [name, n] : seg["records_by_type"].as_object()) by_type[std::string(name)] += n.as_uint64();
    seg_rows.push_back(std::move(seg));
  }
  out["wal_segments"] = std::move(seg_rows);
  json::object types;
  for (const auto& [name, n] : by_type) types[name] = n;
  out["records_by_type"] = std::move(types);
  if (!segs->malformed.empty() || !snaps->malformed.empty()) {
    json::array names;
    for (const auto& n : segs->malformed) names.push_back(json::value(n));
    for (const auto& n : snaps->malformed) names.push_back(json::value(n));
    out["malformed_names"] = std::move(names);
  }

  // What start-up would recover, done in memory only: newest valid snapshot, then the WAL after
  // it, skipping per shard what the snapshot holds; a torn tail is reported, not cut.
  Ledger ledger(Catalog::Default());
  // The very function start-up uses, so the choice (and the fallback past a snapshot found
  // damaged while loading) cannot drift from it; it only reads the files.
  std::vector<uint64_t> skip(Ledger::ShardCount(), 0);
  auto newest = LoadNewestValidSnapshot(ledger, dir);
  uint64_t from = wal::kFromOldest;
  if (!newest.ok()) {
    // A listing error, or a snapshot that verifies but cannot be loaded: start-up would stop.
    clean = false;
    problems.push_back(newest.status().ToString());
  } else {
    for (const auto& rejected : newest->rejected) {
      problems.push_back("snapshot skipped: " + rejected.verdict.ToString());
    }
    if (newest->chosen) {
      out["recovery_snapshot"] = newest->chosen->path;
      skip = std::move(newest->skip_upto);
    }
    // As start-up does: from the oldest segment unless snapshots exist (durability.cc).
    if (newest->chosen || !newest->rejected.empty()) from = newest->replay_from_seq();
  }
  if (clean) {
    // The same replay start-up uses, without the cut: nothing on disk changes.
    ParallelReplayer replayer(ledger, skip, std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
    auto scan = wal::ScanWal(dir, from, wal::RecoverMode::kStrict,
                             [&](const wal::Frame& f) -> Status { return replayer.Add(f); });
    Status replay = replayer.Finish();
    if (!scan.ok() || !replay.ok()) {
      clean = false;
      problems.push_back(!replay.ok() ? replay.ToString() : scan.status().ToString());
    } else {
      out["records_replayed"] = replayer.replayed();
      out["records_skipped"] = replayer.skipped();
      out["last_seq"] = scan->last_seq;
      if (scan->cut.has_value()) {
        problems.push_back("torn tail: start-up will cut " + std::to_string(scan->cut->dropped_bytes) +
                           " bytes from " + scan->cut->path);
      }
    }
  }
  if (clean) {
    out["recovered_totals"] = TotalsJson(ledger.Totals());
    Status inv = ledger.CheckInvariants();
    if (!inv.ok()) {
      clean = false;
      problems.push_back("recovered state fails an invariant: " + inv.ToString());
    }
  }
  json::array notes;
  for (auto& p : problems) notes.push_back(json::value(p));
  out["notes"] = std::move(notes);
  out["clean"] = clean;
  return out;
}

Result<json::object> InspectSnapshot(const std::string& path, const std::optional<std::string>& workspace,
                                     const std::function<void(const json::object&)>& each_workspace) {
  json::object out;
  // One read verifies and loads; the summary is VerifySnapshot's whatever the load made of it.
  Ledger ledger(Catalog::Default());
  std::vector<uint64_t> skip;
  uint64_t sections = 0;
  snapshot::SnapshotSummary v;
  const Status loaded = LoadSnapshot(ledger, path, &skip, &sections, &v);
  out["file"] = path;
  out["covered_seq"] = v.covered_seq;
  out["created_ms"] = v.created_ms;
  out["shard_count"] = v.shard_count;
  out["sections"] = v.section_count;
  out["payload_bytes"] = v.payload_bytes;
  out["bytes"] = v.file_bytes;
  out["verdict"] = v.verdict.ok() ? "ok" : v.verdict.ToString();
  out["clean"] = v.verdict.ok();
  if (!v.verdict.ok()) return out;
  if (!loaded.ok()) {   // an intact file this build cannot load
    out["verdict"] = loaded.ToString();
    out["clean"] = false;
    return out;
  }
  out["totals"] = TotalsJson(ledger.Totals());
  if (each_workspace) {
    ledger.ForEachWorkspace([&](const WorkspaceInfo& w) {
      each_workspace(json::object{{"workspace", w.workspace},
                                  {"limit", LimitValue(w.limit)},
                                  {"used", w.used},
                                  {"reserved", w.reserved},
                                  {"users", w.users}});
    });
  }
  if (workspace.has_value()) {
    auto info = ledger.GetWorkspace(*workspace);
    if (!info.ok()) {
      out["workspace"] = nullptr;
      out["workspace_error"] = info.status().ToString();
    } else {
      json::object w{{"workspace", info->workspace},
                     {"limit", LimitValue(info->limit)},
                     {"used", info->used},
                     {"reserved", info->reserved},
                     {"remaining", LimitValue(info->remaining)},
                     {"region", RegionName(info->region)},
                     {"period", info->period}};
      json::array users;
      for (std::string cursor;;) {   // every user, page by page
        const Result<UserPage> page = ledger.ListUsers(*workspace, Ledger::kMaxUsersPage, cursor);
        if (!page.ok()) break;
        for (const UserInfo& u : page->users) {
          users.push_back(json::object{{"user", u.user}, {"used", u.used}, {"reserved", u.reserved}, {"limit", LimitValue(u.limit)}});
        }
        if (page->next_cursor.empty()) break;
        cursor = page->next_cursor;
      }
      w["users"] = std::move(users);
      out["workspace"] = std::move(w);
    }
  }
  return out;
}

Result<json::object> InspectWal(const std::string& path, uint64_t from, uint64_t limit) {
  auto reader = wal::SegmentReader::Open(path);
  if (!reader.ok()) return reader.status();
  wal::SegmentReader& r = **reader;
  json::object out;
  out["file"] = path;
  out["first_seq"] = r.first_seq();
  out["bytes"] = r.file_size();
  json::array records;
  bool clean = true;
  wal::Frame f;
  uint64_t shown = 0;
  while (r.Next(&f)) {
    if (f.seq < from || (limit != 0 && shown >= limit)) continue;
    ++shown;
    auto rec = ledger::DescribeRecord(f.type, f.payload);
    json::object row;
    row["seq"] = f.seq;
    row["offset"] = f.offset;
    if (rec.ok()) {
      row["record"] = std::move(*rec);
    } else {
      row["record"] = nullptr;
      row["error"] = rec.status().ToString();
      clean = false;
    }
    records.push_back(std::move(row));
  }
  out["records"] = std::move(records);
  out["last_seq"] = r.last_seq();
  if (!r.io_status().ok()) return r.io_status();
  if (r.error() == wal::FrameError::kNone) {
    out["end"] = "clean";
  } else {
    const bool later = r.FindLaterValidFrame().has_value();
    out["end"] = later ? "corrupt" : "torn tail";
    out["error"] = std::string(wal::FrameErrorName(r.error())) + " at offset " + std::to_string(r.end_offset());
    if (later) clean = false;
  }
  out["clean"] = clean;
  return out;
}

}  // namespace genledger::inspect
