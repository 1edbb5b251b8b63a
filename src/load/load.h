// genledger-load: a load generator and end-to-end checker for the genledger server.
// See docs/load.md. Light header (no Boost types): the CLI (cli.cc) and the tests use it.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "load/histogram.h"

namespace genledger::load {

enum class OpMode { kCharge, kReserveCommit, kReserveRelease };
// The ops the load sends, as they appear in per-kind latency tables (not server::OpKind, the
// server's parsed operation).
enum LoadOpKind : uint8_t { kOpCharge = 0, kOpReserve, kOpCommit, kOpRelease, kOpKinds };
const char* LoadOpKindName(int kind);

struct LoadOptions {
  std::string target = "ws://127.0.0.1:8080/v1/ws";   // ws://host:port[/path] or http://host:port
  int connections = 0;          // 0: default for the scheme (ws 4, http 32)
  int batch = 0;                // ops per frame / batch request; 0: default (ws 100, http 1)
  int pipeline = 64;            // WebSocket frames in flight per connection
  double duration_s = 10;
  double rate = 0;              // total ops/s (open loop); 0: closed loop, as fast as possible
  int workspaces = 16;
  int users = 1000;             // per workspace
  int mix_text = 90, mix_image = 5, mix_video = 5;
  OpMode op = OpMode::kCharge;
  std::string token;            // bearer token for the load (gate or admin)
  std::string admin_token;      // for PUT /v1/workspaces (default: token)
  std::string workspace_prefix = "load-ws-";
  bool setup = true;            // false: --no-setup (workspaces must exist)
  int64_t setup_limit = 1'000'000'000'000'000;   // limit PUT on each workspace at setup
  bool verify = true;
  int threads = 0;              // 0: core count
  double max_error_rate = 0;    // non-402 errors / ops above which the run fails
  double drain_timeout_s = 30;  // after the duration, time allowed for in-flight ops
  bool progress = true;         // one line per second on the progress stream
  // Test hook: pretend the server acknowledged this many extra generations on workspace 0
  // (a verifier that is working must then report a mismatch).
  int64_t test_extra_expected_debit = 0;
};

struct WorkspaceCheck {
  std::string workspace;
  int64_t used_before = 0, used_after = 0, reserved_before = 0, reserved_after = 0;
  int64_t expected_debit = 0;   // sum of cost of acknowledged charges/commits
  bool ok = true;
};

struct LoadReport {
  bool usage_error = false;     // bad options, connection/setup failure (exit 2)
  std::string error;            // why, when usage_error
  uint64_t ops = 0;             // ops that got a reply (any status)
  uint64_t ok_ops = 0;          // status 200
  uint64_t refused_402 = 0;
  uint64_t unexpected_errors = 0;   // non-200, non-402 results + ops lost with a connection
  uint64_t unknown_outcome = 0;     // ops sent without a reply (connection lost / drain timeout)
  uint64_t frames = 0;
  int64_t acknowledged_debits = 0;  // sum of cost of 200 charges/commits (all workspaces)
  double elapsed_s = 0;
  double ops_per_sec = 0;
  std::map<std::string, uint64_t> errors;   // by code
  Histogram all;
  std::vector<Histogram> by_kind = std::vector<Histogram>(kOpKinds);
  std::vector<uint64_t> count_by_kind = std::vector<uint64_t>(kOpKinds, 0);
  bool verified = false;        // verification ran and passed
  bool verification_ran = false;
  std::vector<WorkspaceCheck> checks;
  std::string verify_message;
  bool error_rate_exceeded = false;
  bool auth_refused = false;    // some op answered 401/403 (exit 2)
  int exit_code = 0;            // 0 ok, 1 verification/error rate, 2 usage/connection
  LoadOptions options;          // as run (defaults resolved)
};

// Runs the load described by `o` (run.cc). Progress lines go to `progress` (stderr in the CLI).
LoadReport RunLoad(const LoadOptions& o, std::ostream& progress);
// The human-readable summary; with json, the JSON object as the last line (report.cc).
void PrintReport(const LoadReport& r, std::ostream& out, bool json);
std::string ReportJson(const LoadReport& r);

// Reply scanning (load/scan.h, exposed for tests): ScanResults(text, f) calls f(ScannedResult)
// for each result object of a reply frame or batch body; ScanSingle(body, http_status).
struct ScannedResult {
  int status = 0;
  bool has_seq = false;
  uint64_t seq = 0;
  bool has_cost = false;
  int64_t cost = 0;
  uint64_t reservation = 0;   // rs_<n>, 0 if none
  std::string_view code;      // error code, empty if none
};

// The CLI (src/load/main.cc calls it).
int LoadMain(int argc, char** argv);

}  // namespace genledger::load

#include "load/scan.h"
