// The gate ops behind every transport: charge, quote, reserve, commit, release and refund over
// HTTP, /v1/batch and WebSocket frames (Execute, RunOps, HandleFrame), with the per-op scope
// check and the calling thread's catalog. Routing and the route table are in api.cc.

#include "server/api.h"

#include "log/log.h"
#include "server/api_internal.h"

#include <atomic>
#include <chrono>
#include <optional>

#include "util/utf8.h"

namespace genledger::server {

namespace {


MetricOp ToMetricOp(OpKind k) {
  switch (k) {
    case OpKind::kCharge: return MetricOp::kCharge;
    case OpKind::kQuote: return MetricOp::kQuote;
    case OpKind::kReserve: return MetricOp::kReserve;
    case OpKind::kCommit: return MetricOp::kCommit;
    case OpKind::kRelease: return MetricOp::kRelease;
    case OpKind::kRefund: return MetricOp::kRefund;
    case OpKind::kSubscribe: return MetricOp::kSubscribe;
    case OpKind::kUnsubscribe: return MetricOp::kUnsubscribe;
    case OpKind::kNone: break;
  }
  return MetricOp::kOther;
}

uint32_t RequiredFields(OpKind k) {
  switch (k) {
    case OpKind::kCharge:
    case OpKind::kQuote:
    case OpKind::kReserve: return kFWorkspace | kFUser | kFModel;
    case OpKind::kCommit:
    case OpKind::kRelease: return kFReservation;
    case OpKind::kRefund: return kFCharge;
    case OpKind::kSubscribe:
    case OpKind::kUnsubscribe: return kFWorkspace;
    case OpKind::kNone: break;
  }
  return 0;
}

WireError WithCost(const Status& s, uint64_t cost, uint64_t remaining) {
  WireError e = WireError::FromStatus(s);
  if (s.code() == Code::kInsufficientGenerations || s.code() == Code::kUserLimitExceeded) {
    e.has_cost = true;
    e.cost = cost;
    e.remaining = remaining;
  }
  return e;
}

}  // namespace

// A capacity ceiling (workspaces, users, open holds, ... : 429) refuses requests: one log line a
// minute at most, with the count, so the operator learns a limit is in the way.
void NoteStatus(int status) {
  if (status != 429) return;
  static log::RateLimit limit(60'000);
  const uint64_t now_ms = uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::steady_clock::now().time_since_epoch()).count());
  if (uint64_t held = 0; limit.Allow(now_ms, &held)) {
    log::Warn("capacity ceiling reached: a request was answered 429 ({} more since the last line)", held);
  }
}


namespace {
std::atomic<uint64_t> g_next_api_id{1};

// The WebSocket session whose frame this thread is running (Api::HandleFrame), for the ops about
// the connection itself; null outside a frame (HTTP, /v1/batch).
thread_local FrameStreams* tl_frame_streams = nullptr;

// The calling thread's catalog (Api::TakeCatalog): which Api and version it is.
struct ThreadCatalog {
  uint64_t api = 0;
  uint64_t version = 0;
  std::shared_ptr<const Catalog> catalog;
};
thread_local ThreadCatalog tl_catalog;
}  // namespace

Api::Api(std::shared_ptr<Ledger> ledger, std::shared_ptr<Auth> auth,
         std::shared_ptr<Metrics> metrics, ApiLimits limits)
    : ledger_(std::move(ledger)), auth_(std::move(auth)), metrics_(std::move(metrics)),
      limits_(limits), id_(g_next_api_id.fetch_add(1, std::memory_order_relaxed)) {
  // Minted tokens (POST /v1/tokens) are this ledger's: the Auth looks them up there.
  auth_->SetMinted(ledger_);
}

void Api::TakeCatalog() {
  ThreadCatalog& t = tl_catalog;
  if (t.api == id_ && t.version == ledger_->CatalogVersion()) return;
  t.catalog = ledger_->CurrentCatalog(&t.version);
  t.api = id_;
}

WireError Api::PrepareCharge(const OpRequest& r, ChargeRequest& c) {
  const CatalogItem* item = tl_catalog.catalog->Find(r.model);
  if (!item) {
    const std::string m = util::Utf8Shorten(r.model, 64);
    WireError u = WireError::Make(400, "unknown_model", "");
    u.message = "unknown model '";
    u.message += m;
    u.message += "'";
    return u;
  }
  c.workspace = r.workspace;
  c.user = r.user;
  c.item = item;
  c.usage.quantity = r.quantity;
  c.usage.seconds_milli = r.seconds_milli;
  c.usage.outputs = static_cast<uint32_t>(r.outputs);
  c.usage.formats = static_cast<uint32_t>(r.formats);
  c.idempotency_id = r.id;
  return {};
}

WireError Api::CheckOpScope(OpKind kind, const OpRequest& r, const Grant& grant) const {
  // A read token may use /v1/ws for the live streams only (docs/api.md, "Roles").
  if (grant.role < Role::kGate && kind != OpKind::kSubscribe && kind != OpKind::kUnsubscribe) {
    return WireError::Make(403, "forbidden", "the token's role (read) may only subscribe and unsubscribe");
  }
  if (!grant.scoped()) return {};
  std::string owner;
  std::string_view ws;
  switch (kind) {
    case OpKind::kCharge:
    case OpKind::kQuote:
    case OpKind::kReserve:
    case OpKind::kSubscribe:
    case OpKind::kUnsubscribe: ws = r.workspace; break;
    // These name no workspace: the one of their reservation or charge decides (an unknown id
    // passes, and the op then fails on its own as unknown).
    case OpKind::kCommit:
    case OpKind::kRelease:
      if (!r.reservation_known) return {};
      owner = ledger_->WorkspaceOfId(r.reservation_id, /*reservation=*/true);
      if (owner.empty()) return {};
      ws = owner;
      break;
    case OpKind::kRefund:
      if (!r.charge_known) return {};
      owner = ledger_->WorkspaceOfId(r.charge_id, /*reservation=*/false);
      if (owner.empty()) return {};
      ws = owner;
      break;
    case OpKind::kNone: return {};
  }
  if (grant.Allows(ws)) return {};
  return WireError::Make(403, "forbidden", "the token is scoped to other workspaces");
}

WireError Api::Execute(OpKind kind, const OpRequest& r, bool in_frame, std::string& fields,
                       bool& observed, const Grant& grant) {
  if (!r.error.ok()) return r.error;
  uint32_t allowed = AllowedFields(kind) | (in_frame ? (kFOp | kFSeq) : 0);
  WireError e = CheckFields(r, allowed, RequiredFields(kind));
  if (!e.ok()) return e;
  if (WireError se = CheckOpScope(kind, r, grant); !se.ok()) return se;
  switch (kind) {
    case OpKind::kCharge:
    case OpKind::kQuote:
    case OpKind::kReserve: {
      ReserveRequest rr;
      ChargeRequest& c = rr.charge;
      WireError pe = PrepareCharge(r, c);
      if (!pe.ok()) return pe;
      observed = true;   // every branch below reads or changes ledger state, even to refuse
      if (kind == OpKind::kQuote) {
        ChargeResult res = ledger_->Quote(c);
        if (!res.status.ok()) return WithCost(res.status, res.cost, res.remaining);
        AppendQuoteFields(fields, res, (r.present & (kFQuantity | kFSeconds)) != 0, c.item->per_second());
      } else if (kind == OpKind::kCharge) {
        ChargeResult res = ledger_->Charge(c);
        if (!res.status.ok()) return WithCost(res.status, res.cost, res.remaining);
        if (!res.replayed) metrics_->AddDebited(res.cost);
        AppendChargeFields(fields, res);
      } else {
        rr.ttl_ms = r.ttl_ms;
        ReserveResult res = ledger_->Reserve(rr);
        if (!res.status.ok()) return WithCost(res.status, res.held, res.remaining);
        AppendReserveFields(fields, res);
      }
      return {};
    }
    case OpKind::kCommit: {
      if (!r.reservation_known) return WireError::FromStatus(Status(Code::kUnknownReservation));
      std::optional<Usage> actual;
      if (r.present & (kFQuantity | kFSeconds | kFOutputs | kFFormats)) {
        Usage u;
        u.quantity = r.quantity;
        u.seconds_milli = r.seconds_milli;
        u.outputs = static_cast<uint32_t>(r.outputs);
        u.formats = static_cast<uint32_t>(r.formats);
        actual = u;
      }
      observed = true;
      CommitResult res = ledger_->Commit(r.reservation_id, actual);
      if (!res.status.ok()) return WireError::FromStatus(res.status);
      metrics_->AddDebited(res.cost);
      AppendCommitFields(fields, res);
      return {};
    }
    case OpKind::kRelease: {
      if (!r.reservation_known) return WireError::FromStatus(Status(Code::kUnknownReservation));
      observed = true;
      ReleaseResult res = ledger_->Release(r.reservation_id);
      if (!res.status.ok()) return WireError::FromStatus(res.status);
      AppendReleaseFields(fields, res);
      return {};
    }
    case OpKind::kRefund: {
      if (!r.charge_known) return WireError::FromStatus(Status(Code::kUnknownCharge));
      observed = true;
      RefundResult res = ledger_->Refund(r.charge_id);
      if (!res.status.ok()) return WireError::FromStatus(res.status);
      metrics_->AddRefunded(res.refunded);
      AppendRefundFields(fields, res);
      return {};
    }
    case OpKind::kSubscribe:
    case OpKind::kUnsubscribe: {
      FrameStreams* streams = in_frame ? tl_frame_streams : nullptr;
      if (streams == nullptr)
        return WireError::Make(400, "invalid_argument", "subscribe and unsubscribe are WebSocket ops (/v1/ws)");
      observed = kind == OpKind::kSubscribe;   // the state in the reply is ledger state
      return kind == OpKind::kSubscribe ? streams->Subscribe(r.workspace, fields)
                                        : streams->Unsubscribe(r.workspace, fields);
    }
    case OpKind::kNone: break;
  }
  return WireError::Make(400, "invalid_argument", "missing field 'op'");
}

bool Api::AppendOpResult(const OpRequest& r, std::string& out, const Grant& grant) {
  std::string fields;
  bool observed = false;
  WireError e;
  if (!r.error.ok())
    e = r.error;
  else if (r.op == OpKind::kNone)
    e = WireError::Make(400, "invalid_argument", "missing field 'op'");
  else
    e = Execute(r.op, r, /*in_frame=*/true, fields, observed, grant);
  AppendResultPrefix(r, e.ok() ? 200 : e.http, out);
  if (e.ok())
    out += fields;
  else
    AppendErrorMember(out, e);
  out.push_back('}');
  return observed;
}

namespace {
thread_local std::vector<ChargeRequest> tl_charges;
thread_local std::vector<ChargeResult> tl_charge_results;
thread_local std::vector<size_t> tl_charge_index;
}  // namespace

void Api::AppendResultPrefix(const OpRequest& r, int status, std::string& out) {
  metrics_->Count(ToMetricOp(r.op), status);
  NoteStatus(status);
  out += "{\"status\":";
  AppendU64(out, uint64_t(status));
  if (r.has(kFSeq)) {
    out += ",\"seq\":";
    AppendU64(out, r.seq);
  }
  out.push_back(',');
}

bool Api::RunOps(const std::vector<OpRequest>& ops, std::string& out, const Grant& grant) {
  bool observed = false;
  size_t i = 0;
  while (i < ops.size()) {
    // A run of well-formed charges goes through Ledger::ChargeBatch in one call.
    auto& reqs = tl_charges;
    auto& idx = tl_charge_index;
    reqs.clear();
    idx.clear();
    size_t j = i;
    for (; j < ops.size(); ++j) {
      const OpRequest& r = ops[j];
      if (r.op != OpKind::kCharge || !r.error.ok() || !grant.Allows(r.workspace)) break;
      if (!CheckFields(r, AllowedFields(OpKind::kCharge) | kFOp | kFSeq,
                       RequiredFields(OpKind::kCharge)).ok())
        break;
      ChargeRequest c;
      if (!PrepareCharge(r, c).ok()) break;
      reqs.push_back(c);
      idx.push_back(j);
    }
    if (reqs.size() >= 2) {
      auto& results = tl_charge_results;
      results.assign(reqs.size(), ChargeResult{});
      ledger_->ChargeBatch(reqs, results);
      observed = true;
      for (size_t k = 0; k < reqs.size(); ++k) {
        if (idx[k] != 0) out.push_back(',');
        const ChargeResult& res = results[k];
        const OpRequest& r = ops[idx[k]];
        if (res.status.ok()) {
          if (!res.replayed) metrics_->AddDebited(res.cost);
          AppendResultPrefix(r, 200, out);
          AppendChargeFields(out, res);
        } else {
          WireError e = WithCost(res.status, res.cost, res.remaining);
          AppendResultPrefix(r, e.http, out);
          AppendErrorMember(out, e);
        }
        out.push_back('}');
      }
      i = j;
      continue;
    }
    if (i != 0) out.push_back(',');
    if (AppendOpResult(ops[i], out, grant)) observed = true;
    ++i;
  }
  return observed;
}

void Api::Batch(std::string_view body, HttpReply& out, const Grant& grant) {
  ParsedBody& pb = ThreadParsedBody();
  ParseBody(body, BodyShape::kBatch, limits_.max_batch_ops, pb);
  if (!pb.error.ok()) return SetError(out, pb.error);
  out.status = 200;
  out.body = "{\"results\":[";
  out.ledger_state = RunOps(pb.ops, out.body, grant);
  out.body += "]}";
}

bool Api::HandleFrame(std::string_view text, std::string& out, const Grant* grant, FrameStreams* streams) {
  static const Grant kUnscoped{Role::kAdmin, nullptr, false};
  auto start = std::chrono::steady_clock::now();
  struct StreamsScope {
    explicit StreamsScope(FrameStreams* s) { tl_frame_streams = s; }
    ~StreamsScope() { tl_frame_streams = nullptr; }
  } streams_scope(streams);
  TakeCatalog();
  ParsedBody& pb = ThreadParsedBody();
  ParseBody(text, BodyShape::kFrame, limits_.max_batch_ops, pb);
  bool observed = false;
  if (pb.error.ok() && durability_ != nullptr && !durability_->status().ok()) {
    // As for HTTP: nothing is applied once the WAL has failed (reads are HTTP-only).
    pb.error = WireError::Make(503, "unavailable", std::string(durability_->status().message()));
  }
  if (!pb.error.ok()) {
    out += "{\"status\":";
    AppendU64(out, uint64_t(pb.error.http));
    out.push_back(',');
    AppendErrorMember(out, pb.error);
    out.push_back('}');
    metrics_->Count(MetricOp::kWsFrame, pb.error.http);
  } else {
    if (pb.is_array) out.push_back('[');
    observed = RunOps(pb.ops, out, grant != nullptr ? *grant : kUnscoped);
    if (pb.is_array) out.push_back(']');
    metrics_->Count(MetricOp::kWsFrame, 200);
  }
  metrics_->Observe(MetricOp::kWsFrame,
                    uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now() - start)
                                 .count()));
  return observed;
}

}  // namespace genledger::server
