// genledger-inspect: look inside a genledger data directory without changing it.
//
//   genledger-inspect DATA_DIR [--json]
//   genledger-inspect snapshot FILE [--workspace ID] [--workspaces] [--json]
//   genledger-inspect wal FILE [--from SEQ] [--limit N] [--json]
//
// Exit status: 0 clean (a torn tail, the normal result of a crash, counts as clean), 1 corruption
// or a directory start-up would refuse, 2 usage or I/O errors.
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <boost/json/serialize.hpp>

#include "inspect/inspect.h"
#include "ledger/log_record_text.h"

namespace json = boost::json;
using genledger::Result;

namespace {

std::string Str(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "-";
  return json::serialize(v);
}

void PrintDir(const json::object& o) {
  std::printf("data directory %s\n\n", Str(o.at("data_dir")).c_str());
  std::printf("snapshots:\n  %-60s %20s %10s %14s  %s\n", "file", "covered seq", "sections", "bytes", "verdict");
  for (const auto& v : o.at("snapshots").as_array()) {
    const auto& s = v.as_object();
    std::printf("  %-60s %20s %10s %14s  %s\n", Str(s.at("file")).c_str(), Str(s.at("covered_seq")).c_str(),
                Str(s.at("sections")).c_str(), Str(s.at("bytes")).c_str(), Str(s.at("verdict")).c_str());
  }
  std::printf("\nWAL segments:\n  %-60s %12s %12s %10s %14s  %s\n", "file", "first seq", "last seq", "frames", "bytes", "verdict");
  for (const auto& v : o.at("wal_segments").as_array()) {
    const auto& s = v.as_object();
    std::string verdict = Str(s.at("verdict"));
    if (s.contains("error")) verdict += " (" + Str(s.at("error")) + ")";
    std::printf("  %-60s %12s %12s %10s %14s  %s\n", Str(s.at("file")).c_str(),
                s.contains("first_seq") ? Str(s.at("first_seq")).c_str() : "-",
                s.contains("last_seq") ? Str(s.at("last_seq")).c_str() : "-",
                s.contains("frames") ? Str(s.at("frames")).c_str() : "-",
                s.contains("bytes") ? Str(s.at("bytes")).c_str() : "-", verdict.c_str());
  }
  std::printf("\nrecords by type:");
  for (const auto& [name, n] : o.at("records_by_type").as_object()) std::printf(" %s=%s", std::string(name).c_str(), Str(n).c_str());
  std::printf("\n");
  if (o.contains("recovery_snapshot")) std::printf("recovery starts from %s\n", Str(o.at("recovery_snapshot")).c_str());
  if (o.contains("records_replayed")) {
    std::printf("WAL records replayed: %s (skipped as already in the snapshot: %s)\n",
                Str(o.at("records_replayed")).c_str(), Str(o.at("records_skipped")).c_str());
  }
  if (o.contains("recovered_totals")) {
    std::printf("recovered totals:");
    for (const auto& [name, n] : o.at("recovered_totals").as_object()) std::printf(" %s=%s", std::string(name).c_str(), Str(n).c_str());
    std::printf("\n");
  }
  for (const auto& n : o.at("notes").as_array()) std::printf("note: %s\n", Str(n).c_str());
  std::printf("would recover cleanly: %s\n", o.at("clean").as_bool() ? "yes" : "NO");
}

void PrintSnapshot(const json::object& o) {
  for (const char* k : {"file", "covered_seq", "created_ms", "shard_count", "sections", "payload_bytes", "bytes", "verdict"}) {
    std::printf("%-14s %s\n", k, Str(o.at(k)).c_str());
  }
  if (o.contains("totals")) {
    std::printf("totals        ");
    for (const auto& [name, n] : o.at("totals").as_object()) std::printf(" %s=%s", std::string(name).c_str(), Str(n).c_str());
    std::printf("\n");
  }
  if (o.contains("workspace_error")) std::printf("workspace      %s\n", Str(o.at("workspace_error")).c_str());
  if (o.contains("workspace") && o.at("workspace").is_object()) {
    const auto& w = o.at("workspace").as_object();
    std::printf("\nworkspace %s: limit=%s used=%s reserved=%s remaining=%s region=%s period=%s\n",
                Str(w.at("workspace")).c_str(), Str(w.at("limit")).c_str(), Str(w.at("used")).c_str(),
                Str(w.at("reserved")).c_str(), Str(w.at("remaining")).c_str(), Str(w.at("region")).c_str(),
                Str(w.at("period")).c_str());
    std::printf("  %-40s %12s %12s %12s\n", "user", "used", "reserved", "limit");
    for (const auto& u : w.at("users").as_array()) {
      const auto& x = u.as_object();
      std::printf("  %-40s %12s %12s %12s\n", Str(x.at("user")).c_str(), Str(x.at("used")).c_str(),
                  Str(x.at("reserved")).c_str(), Str(x.at("limit")).c_str());
    }
  }
}

int Finish(const Result<json::object>& r, bool as_json, void (*print)(const json::object&)) {
  if (!r.ok()) {
    std::fprintf(stderr, "genledger-inspect: %s\n", r.status().ToString().c_str());
    return r.code() == genledger::Code::kCorruption ? 1 : 2;
  }
  if (as_json) {
    std::cout << json::serialize(*r) << "\n";
  } else {
    print(*r);
  }
  return r->at("clean").as_bool() ? 0 : 1;
}

// `snapshot FILE --workspaces`: one row per workspace. The rows are printed as the snapshot is
// walked; a snapshot that is not clean prints its summary instead, as without the flag.
int ListWorkspaces(const std::string& file, bool as_json) {
  bool header = false;
  auto row = [&](const json::object& w) {
    if (as_json) {
      std::cout << json::serialize(w) << "\n";
      return;
    }
    if (!header) {
      std::printf("%-40s %20s %20s %20s %10s\n", "workspace", "limit", "used", "reserved", "users");
      header = true;
    }
    std::printf("%-40s %20s %20s %20s %10s\n", Str(w.at("workspace")).c_str(),
                w.at("limit").is_null() ? "unlimited" : Str(w.at("limit")).c_str(), Str(w.at("used")).c_str(),
                Str(w.at("reserved")).c_str(), Str(w.at("users")).c_str());
  };
  auto r = genledger::inspect::InspectSnapshot(file, std::nullopt, row);
  if (r.ok() && r->at("clean").as_bool()) return 0;
  return Finish(r, as_json, PrintSnapshot);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"genledger-inspect " GENLEDGER_VERSION ": look inside a genledger data directory (read-only).\n"
               "Exit status: 0 clean (a torn tail counts as clean), 1 corruption, 2 usage or I/O error."};
  app.set_version_flag("--version", GENLEDGER_VERSION);
  bool as_json = false;
  std::string data_dir;
  app.add_option("DATA_DIR", data_dir, "data directory to summarise: snapshots, WAL segments, recovered totals");
  app.add_flag("--json", as_json, "print one JSON object instead of tables");

  auto* snap = app.add_subcommand("snapshot", "verify one snapshot file and show its contents");
  std::string snap_file;
  std::optional<std::string> workspace;
  snap->add_option("FILE", snap_file, "snapshot file (snap-*.snap)")->required();
  snap->add_option("--workspace", workspace, "show this workspace's balances and users");
  bool list_workspaces = false;
  snap->add_flag("--workspaces", list_workspaces,
                 "list every workspace (id, limit, used, reserved, users); with --json one object per line");
  snap->add_flag("--json", as_json, "print one JSON object");

  auto* wal = app.add_subcommand("wal", "list the records of one WAL segment, one per line");
  std::string wal_file;
  uint64_t from = 0, limit = 0;
  wal->add_option("FILE", wal_file, "WAL segment file (wal-*.log)")->required();
  wal->add_option("--from", from, "first sequence number to show");
  wal->add_option("--limit", limit, "show at most this many records (0: all)");
  wal->add_flag("--json", as_json, "one JSON object per record line");
  app.require_subcommand(0, 1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (*snap && list_workspaces) return ListWorkspaces(snap_file, as_json);
  if (*snap) return Finish(genledger::inspect::InspectSnapshot(snap_file, workspace), as_json, PrintSnapshot);
  if (*wal) {
    auto r = genledger::inspect::InspectWal(wal_file, from, limit);
    if (!r.ok()) return Finish(r, as_json, nullptr);
    for (const auto& row : r->at("records").as_array()) {
      const auto& o = row.as_object();
      if (as_json) {
        std::cout << json::serialize(o) << "\n";
      } else if (o.at("record").is_object()) {
        std::printf("%-10s @%-10s %s\n", Str(o.at("seq")).c_str(), Str(o.at("offset")).c_str(),
                    genledger::ledger::RecordToText(o.at("record").as_object()).c_str());
      } else {
        std::printf("%-10s @%-10s undecodable: %s\n", Str(o.at("seq")).c_str(), Str(o.at("offset")).c_str(),
                    Str(o.at("error")).c_str());
      }
    }
    const std::string end = Str(r->at("end"));
    if (as_json) {
      json::object tail{{"end", end}, {"last_seq", r->at("last_seq")}};
      if (r->contains("error")) tail["error"] = r->at("error");
      std::cout << json::serialize(tail) << "\n";
    } else {
      std::printf("-- end: %s%s (last seq %s)\n", end.c_str(),
                  r->contains("error") ? (", " + Str(r->at("error"))).c_str() : "", Str(r->at("last_seq")).c_str());
    }
    return r->at("clean").as_bool() ? 0 : 1;
  }
  if (data_dir.empty()) {
    std::fprintf(stderr, "%s", app.help().c_str());
    return 2;
  }
  return Finish(genledger::inspect::InspectDir(data_dir), as_json, PrintDir);
}
