// Process metrics, rendered by hand in the Prometheus text format (GET /metrics).
// Lock-free: relaxed atomic counters.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "genledger/durability.h"
#include "genledger/ledger.h"

namespace genledger::server {

enum class MetricOp : uint8_t {
  kCharge, kQuote, kReserve, kCommit, kRelease, kRefund, kBatch, kWsFrame,
  kGetWorkspace, kPutWorkspace, kListUsers, kPutUser, kTopUp, kReset,
  kCatalog, kHealth, kMetrics, kOther, kListGrants, kAddGrant, kVoidGrant,
  kListWorkspaces, kTokens,
  kSubscribe, kUnsubscribe, kEvents, kUi,
  kGetAlerts, kPutAlerts, kWebhooks, kUsage, kCount
};
const char* MetricOpName(MetricOp op) noexcept;

class Metrics {
 public:
  // Count's fallback for any other status is 500 (kFallbackStatus).
  static constexpr int kStatuses[] = {200, 201, 204, 400, 401, 402, 403, 404, 405, 409, 413, 429, 500, 503, 308};
  static constexpr size_t kNumStatuses = sizeof(kStatuses) / sizeof(kStatuses[0]);
  // Where 500 is in kStatuses: any status not listed is counted there.
  static constexpr size_t kFallbackIndex = [] {
    size_t i = 0;
    while (kStatuses[i] != 500) ++i;
    return i;
  }();
  // Latency bucket upper bounds in microseconds (+Inf implied).
  static constexpr uint64_t kBucketsUs[] = {10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
                                            25000, 100000, 1000000};
  static constexpr size_t kNumBuckets = sizeof(kBucketsUs) / sizeof(kBucketsUs[0]);

  // Counts one request/op with its HTTP status (other statuses count as 500).
  void Count(MetricOp op, int http_status) noexcept;
  // One latency observation for `op`, in nanoseconds.
  void Observe(MetricOp op, uint64_t ns) noexcept;
  void AddDebited(uint64_t g) noexcept { debited_.fetch_add(g, std::memory_order_relaxed); }
  void AddRefunded(uint64_t g) noexcept { refunded_.fetch_add(g, std::memory_order_relaxed); }
  void ConnectionOpened() noexcept { open_.fetch_add(1, std::memory_order_relaxed); accepted_.fetch_add(1, std::memory_order_relaxed); }
  void ConnectionClosed() noexcept { open_.fetch_sub(1, std::memory_order_relaxed); }
  void ConnectionRejected() noexcept { rejected_.fetch_add(1, std::memory_order_relaxed); }
  void WsOpened() noexcept { ws_open_.fetch_add(1, std::memory_order_relaxed); }
  void WsClosed() noexcept { ws_open_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t open_connections() const noexcept { return open_.load(std::memory_order_relaxed); }

  std::string Render(const LedgerTotals& totals) const;

 private:
  static constexpr size_t kOps = size_t(MetricOp::kCount);
  struct Histogram {
    std::array<std::atomic<uint64_t>, kNumBuckets + 1> buckets{};
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_ns{0};
  };
  std::array<std::array<std::atomic<uint64_t>, kNumStatuses>, kOps> requests_{};
  std::array<Histogram, kOps> latency_{};
  std::atomic<uint64_t> debited_{0}, refunded_{0}, accepted_{0}, rejected_{0};
  std::atomic<int64_t> open_{0}, ws_open_{0};
};

// Prometheus text for the WAL's group commit and the snapshots (genledger_wal_*,
// genledger_snapshot_*), appended to /metrics when the server is durable.
std::string RenderDurabilityMetrics(const Durability& d);

}  // namespace genledger::server
