// genledger-load: the end-of-run report, as text and as one JSON line (load.h, docs/load.md).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <string>
#include <string_view>

#include <boost/json/serialize.hpp>

#include "load/load.h"

namespace genledger::load {

const char* LoadOpKindName(int kind) {
  switch (kind) {
    case kOpCharge: return "charge";
    case kOpReserve: return "reserve";
    case kOpCommit: return "commit";
    case kOpRelease: return "release";
  }
  return "?";
}

namespace {

// Keys and strings are escaped by Boost.JSON; numbers are written here, in fixed notation with
// a stated number of decimals (Boost.JSON would print doubles with an exponent).
void JsonStr(std::string& out, std::string_view v) { out += boost::json::serialize(v); }
void JsonKey(std::string& out, std::string_view k) {
  if (out.back() != '{') out += ',';
  JsonStr(out, k);
  out += ':';
}
void JsonU(std::string& out, std::string_view k, uint64_t v) {
  JsonKey(out, k);
  out += std::to_string(v);
}
void JsonD(std::string& out, std::string_view k, double v, int decimals) {
  JsonKey(out, k);
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, std::isfinite(v) ? v : 0.0);
  out += b;
}
void JsonHist(std::string& out, const Histogram& h) {
  JsonU(out, "p50_us", h.Percentile(50));
  JsonU(out, "p90_us", h.Percentile(90));
  JsonU(out, "p99_us", h.Percentile(99));
  JsonU(out, "p999_us", h.Percentile(99.9));
  JsonU(out, "max_us", h.max());
  JsonD(out, "mean_us", h.mean(), 1);
}
}  // namespace

// One line, stable key order, no exponents in numbers.
std::string ReportJson(const LoadReport& r) {
  const LoadOptions& o = r.options;
  std::string j = "{";
  JsonU(j, "ops", r.ops);
  JsonD(j, "ops_per_sec", r.ops_per_sec, 1);
  JsonU(j, "errors", r.unexpected_errors);
  JsonU(j, "refused_402", r.refused_402);
  JsonU(j, "unknown_outcome", r.unknown_outcome);
  JsonKey(j, "acknowledged_debits");
  j += std::to_string(r.acknowledged_debits);
  JsonHist(j, r.all);
  JsonKey(j, "errors_by_code");
  j += '{';
  for (auto& [k, v] : r.errors) JsonU(j, k, v);
  j += '}';
  JsonKey(j, "by_op");
  j += '{';
  for (int k = 0; k < kOpKinds; ++k) {
    const Histogram& h = r.by_kind[size_t(k)];
    if (!h.count()) continue;
    JsonKey(j, LoadOpKindName(k));
    j += '{';
    JsonU(j, "ops", h.count());
    JsonHist(j, h);
    j += '}';
  }
  j += '}';
  JsonU(j, "frames", r.frames);
  JsonD(j, "elapsed_s", r.elapsed_s, 3);
  JsonKey(j, "target");
  JsonStr(j, o.target);
  JsonKey(j, "transport");
  JsonStr(j, o.target.rfind("ws://", 0) == 0 ? "ws" : "http");
  JsonKey(j, "op");
  JsonStr(j, o.op == OpMode::kCharge ? "charge"
             : o.op == OpMode::kReserveCommit ? "reserve-commit" : "reserve-release");
  JsonU(j, "connections", uint64_t(std::max(0, o.connections)));
  JsonU(j, "batch", uint64_t(std::max(0, o.batch)));
  JsonU(j, "pipeline", uint64_t(std::max(0, o.pipeline)));
  JsonU(j, "threads", uint64_t(std::max(0, o.threads)));
  JsonD(j, "rate", o.rate, 1);
  JsonD(j, "duration_s", o.duration_s, 3);
  JsonKey(j, "verified");
  j += r.verification_ran ? (r.verified ? "true" : "false") : "null";
  if (r.usage_error) {
    JsonKey(j, "error");
    JsonStr(j, r.error);
  }
  JsonU(j, "exit_code", uint64_t(r.exit_code));
  j += '}';
  return j;
}

void PrintReport(const LoadReport& r, std::ostream& out, bool json) {
  const LoadOptions& o = r.options;
  char line[512];
  std::snprintf(line, sizeof line,
                "genledger-load: %s, %d connections, batch %d%s, %.2fs\n", o.target.c_str(),
                o.connections, o.batch,
                o.rate > 0 ? (", open loop " + std::to_string(int64_t(o.rate)) + " ops/s").c_str()
                           : ", closed loop",
                r.elapsed_s);
  out << line;
  std::snprintf(line, sizeof line,
                "ops %llu (%.0f ops/s), frames/requests %llu, ok %llu, refused (402) %llu, "
                "unexpected errors %llu, no reply %llu\n",
                (unsigned long long)r.ops, r.ops_per_sec, (unsigned long long)r.frames,
                (unsigned long long)r.ok_ops, (unsigned long long)r.refused_402,
                (unsigned long long)r.unexpected_errors, (unsigned long long)r.unknown_outcome);
  out << line;
  if (!r.errors.empty()) {
    out << "errors by code:";
    for (auto& [k, v] : r.errors) out << " " << k << "=" << v;
    out << "\n";
  }
  out << "latency (us, from intended send time; histogram error <= 0.8%):\n";
  std::snprintf(line, sizeof line, "  %-8s %10s %8s %8s %8s %8s %8s\n", "op", "count", "p50",
                "p90", "p99", "p99.9", "max");
  out << line;
  auto row = [&](const char* name, const Histogram& h) {
    std::snprintf(line, sizeof line, "  %-8s %10llu %8llu %8llu %8llu %8llu %8llu\n", name,
                  (unsigned long long)h.count(), (unsigned long long)h.Percentile(50),
                  (unsigned long long)h.Percentile(90), (unsigned long long)h.Percentile(99),
                  (unsigned long long)h.Percentile(99.9), (unsigned long long)h.max());
    out << line;
  };
  for (int k = 0; k < kOpKinds; ++k)
    if (r.by_kind[size_t(k)].count()) row(LoadOpKindName(k), r.by_kind[size_t(k)]);
  row("all", r.all);
  if (r.verification_ran) out << r.verify_message;
  else out << "verification skipped (--no-verify)\n";
  if (r.error_rate_exceeded)
    out << "FAIL: unexpected error rate "
        << (r.ops ? double(r.unexpected_errors) / double(r.ops) : 1.0) << " above --max-error-rate "
        << o.max_error_rate << (r.ops == 0 ? " (no op completed)" : "") << "\n";
  if (r.auth_refused)
    out << "FAIL: the server refused the token (unauthorized/forbidden): check --token (a gate "
           "or admin token)\n";
  if (json) out << ReportJson(r) << "\n";
  out << std::flush;
}

}  // namespace genledger::load
