#include "server/metrics.h"

#include <cstdio>

namespace genledger::server {

const char* MetricOpName(MetricOp op) noexcept {
  switch (op) {
    case MetricOp::kCharge: return "charge";
    case MetricOp::kQuote: return "quote";
    case MetricOp::kReserve: return "reserve";
    case MetricOp::kCommit: return "commit";
    case MetricOp::kRelease: return "release";
    case MetricOp::kRefund: return "refund";
    case MetricOp::kBatch: return "batch";
    case MetricOp::kWsFrame: return "ws_frame";
    case MetricOp::kGetWorkspace: return "get_workspace";
    case MetricOp::kPutWorkspace: return "put_workspace";
    case MetricOp::kListUsers: return "list_users";
    case MetricOp::kListWorkspaces: return "list_workspaces";
    case MetricOp::kUi: return "ui";
    case MetricOp::kPutUser: return "put_user";
    case MetricOp::kTopUp: return "topup";
    case MetricOp::kReset: return "reset";
    case MetricOp::kCatalog: return "catalog";
    case MetricOp::kHealth: return "healthz";
    case MetricOp::kMetrics: return "metrics";
    case MetricOp::kOther: return "other";
    case MetricOp::kListGrants: return "list_grants";
    case MetricOp::kAddGrant: return "add_grant";
    case MetricOp::kVoidGrant: return "void_grant";
    case MetricOp::kTokens: return "tokens";
    case MetricOp::kSubscribe: return "subscribe";
    case MetricOp::kUnsubscribe: return "unsubscribe";
    case MetricOp::kEvents: return "events";
    case MetricOp::kGetAlerts: return "get_alerts";
    case MetricOp::kPutAlerts: return "put_alerts";
    case MetricOp::kWebhooks: return "webhooks";
    case MetricOp::kUsage: return "usage";
    case MetricOp::kCount: break;
  }
  return "other";
}

void Metrics::Count(MetricOp op, int http_status) noexcept {
  size_t s = 0;
  for (; s < kNumStatuses; ++s)
    if (kStatuses[s] == http_status) break;
  if (s == kNumStatuses) s = kFallbackIndex;   // counted as 500
  requests_[size_t(op)][s].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::Observe(MetricOp op, uint64_t ns) noexcept {
  Histogram& h = latency_[size_t(op)];
  uint64_t us = ns / 1000;
  size_t b = 0;
  while (b < kNumBuckets && us > kBucketsUs[b]) ++b;
  h.buckets[b].fetch_add(1, std::memory_order_relaxed);
  h.count.fetch_add(1, std::memory_order_relaxed);
  h.sum_ns.fetch_add(ns, std::memory_order_relaxed);
}

namespace {
void Line(std::string& out, const char* fmt, auto... args) {
  char buf[256];
  int n = std::snprintf(buf, sizeof buf, fmt, args...);
  if (n > 0) out.append(buf, std::min<size_t>(size_t(n), sizeof buf - 1));
}
}  // namespace

std::string Metrics::Render(const LedgerTotals& t) const {
  std::string out;
  out.reserve(16384);
  out += "# HELP genledger_requests_total Requests (HTTP) and ops (batch/WebSocket) by operation and HTTP status.\n";
  out += "# TYPE genledger_requests_total counter\n";
  for (size_t op = 0; op < kOps; ++op)
    for (size_t s = 0; s < kNumStatuses; ++s) {
      uint64_t v = requests_[op][s].load(std::memory_order_relaxed);
      if (v == 0) continue;
      Line(out, "genledger_requests_total{operation=\"%s\",status=\"%d\"} %llu\n",
           MetricOpName(MetricOp(op)), kStatuses[s], (unsigned long long)v);
    }
  out += "# HELP genledger_request_duration_seconds Time to handle a request, by operation.\n";
  out += "# TYPE genledger_request_duration_seconds histogram\n";
  for (size_t op = 0; op < kOps; ++op) {
    const Histogram& h = latency_[op];
    uint64_t count = h.count.load(std::memory_order_relaxed);
    if (count == 0) continue;
    const char* name = MetricOpName(MetricOp(op));
    uint64_t cum = 0;
    for (size_t b = 0; b <= kNumBuckets; ++b) {
      cum += h.buckets[b].load(std::memory_order_relaxed);
      if (b < kNumBuckets)
        Line(out, "genledger_request_duration_seconds_bucket{operation=\"%s\",le=\"%g\"} %llu\n",
             name, double(kBucketsUs[b]) / 1e6, (unsigned long long)cum);
      else
        Line(out, "genledger_request_duration_seconds_bucket{operation=\"%s\",le=\"+Inf\"} %llu\n",
             name, (unsigned long long)cum);
    }
    Line(out, "genledger_request_duration_seconds_sum{operation=\"%s\"} %.9f\n", name,
         double(h.sum_ns.load(std::memory_order_relaxed)) / 1e9);
    Line(out, "genledger_request_duration_seconds_count{operation=\"%s\"} %llu\n", name,
         (unsigned long long)cum);
  }
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    Line(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
         (unsigned long long)v);
  };
  auto gauge = [&](const char* name, const char* help, long long v) {
    Line(out, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, v);
  };
  counter("genledger_generations_debited_total", "Generations debited by charges and commits.",
          debited_.load(std::memory_order_relaxed));
  counter("genledger_generations_refunded_total", "Generations given back by refunds.",
          refunded_.load(std::memory_order_relaxed));
  counter("genledger_connections_accepted_total", "TCP connections accepted.",
          accepted_.load(std::memory_order_relaxed));
  counter("genledger_connections_rejected_total", "Connections refused at --max-connections.",
          rejected_.load(std::memory_order_relaxed));
  gauge("genledger_open_connections", "Open client connections (HTTP and WebSocket).",
        open_.load(std::memory_order_relaxed));
  gauge("genledger_open_websockets", "Open WebSocket connections.",
        ws_open_.load(std::memory_order_relaxed));
  gauge("genledger_workspaces", "Workspaces in the ledger.", (long long)t.workspaces);
  gauge("genledger_users", "Users in the ledger.", (long long)t.users);
  gauge("genledger_used_generations", "Generations used this period, all workspaces.", (long long)t.used);
  gauge("genledger_reserved_generations", "Generations held by open reservations.", (long long)t.reserved);
  gauge("genledger_open_reservations", "Open reservations.", (long long)t.open_reservations);
  gauge("genledger_idempotency_entries", "Remembered idempotency ids.", (long long)t.idempotency_entries);
  counter("genledger_idempotency_evicted_early_total",
          "Ids forgotten inside their window: --idempotency-capacity was exhausted.",
          t.idempotency_evicted_early);
  counter("genledger_refund_evicted_early_total",
          "Charges forgotten inside the refund window: --refund-capacity was exhausted.",
          t.refund_evicted_early);
  out += "# HELP genledger_shadow_would_refuse_total Charges and holds a shadow-mode workspace let "
         "through that hard mode would have refused, by the code it would have answered.\n"
         "# TYPE genledger_shadow_would_refuse_total counter\n";
  Line(out, "genledger_shadow_would_refuse_total{code=\"insufficient_generations\"} %llu\n",
       (unsigned long long)t.shadow_would_refuse_insufficient);
  Line(out, "genledger_shadow_would_refuse_total{code=\"user_limit_exceeded\"} %llu\n",
       (unsigned long long)t.shadow_would_refuse_user_limit);
  gauge("genledger_usage_history_bytes", "Bytes the usage history rows take (counted, see docs/ledger.md).",
        (long long)t.usage_history_bytes);
  counter("genledger_usage_history_folded_total",
          "Charges counted in an \"(other)\" usage row: --usage-history-bytes was reached.",
          t.usage_history_folded);
  return out;
}

std::string RenderDurabilityMetrics(const Durability& d) {
  const Durability::Stats st = d.stats();
  std::string out;
  auto metric = [&out](const char* name, const char* type, const char* help, uint64_t value) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
    out += name;
    out += ' ';
    out += std::to_string(value);
    out += '\n';
  };
  metric("genledger_wal_failed", "gauge", "1 once a WAL write or fsync failed (sticky).", d.status().ok() ? 0 : 1);
  metric("genledger_wal_rounds_total", "counter", "Group-commit rounds written.", st.rounds);
  metric("genledger_wal_records_total", "counter", "WAL records written.", st.records);
  metric("genledger_wal_bytes_total", "counter", "WAL payload bytes written.", st.bytes);
  metric("genledger_wal_fsyncs_total", "counter", "fdatasync calls.", st.syncs);
  metric("genledger_wal_last_batch_records", "gauge", "Records in the last group-commit round.", st.last_batch_records);
  metric("genledger_wal_last_fsync_microseconds", "gauge", "Duration of the last fdatasync.", st.last_sync_us);
  metric("genledger_wal_max_fsync_microseconds", "gauge", "Longest fdatasync since start.", st.max_sync_us);
  metric("genledger_snapshots_total", "counter", "Snapshots written.", st.snapshots);
  metric("genledger_snapshot_failures_total", "counter", "Snapshots that failed.", st.snapshot_failures);
  metric("genledger_snapshot_last_duration_milliseconds", "gauge", "Duration of the last snapshot.", st.last_snapshot_ms);
  metric("genledger_snapshot_last_bytes", "gauge", "Size of the last snapshot.", st.last_snapshot_bytes);
  metric("genledger_snapshot_max_shard_hold_microseconds", "gauge", "Longest shard lock hold while copying a shard.", st.max_shard_hold_us);
  metric("genledger_wal_segments_deleted_total", "counter", "WAL segments deleted after snapshots covered them.", st.segments_deleted);
  return out;
}

}  // namespace genledger::server
