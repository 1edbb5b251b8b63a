#include "ledger/log_record_text.h"

#include <span>

#include <boost/json/serialize.hpp>

#include "genledger/catalog.h"
#include "ledger/log_record.h"
#include "ledger/tokens.h"
#include "ledger/webhooks.h"

namespace genledger::ledger {
namespace {

enum class Kind { kUnit, kU8, kU32, kU64, kLimit, kStr, kUser, kIdempotency, kRegion, kUVar32, kUVar64, kUVarUser, kU16, kParts, kCatalog, kWsRef, kToken, kAlerts, kWebhook, kCursors, kUVarModel };
struct Field {
  const char* name;
  Kind kind;
};

// The layout of every record after its (shard, record_no) prefix, as in docs/wal-records.md.
constexpr Field kCreate[] = {{"id", Kind::kStr}, {"limit", Kind::kLimit}, {"region", Kind::kRegion}};
constexpr Field kUpdate[] = {{"ws", Kind::kU32}, {"limit", Kind::kLimit}, {"region", Kind::kRegion}};
constexpr Field kUserLimit[] = {{"ws", Kind::kU32}, {"user", Kind::kUser}, {"limit", Kind::kLimit}};
constexpr Field kTopUp[] = {{"ws", Kind::kU32}, {"amount", Kind::kU64}};
constexpr Field kReset[] = {{"ws", Kind::kU32}};
constexpr Field kCharge[] = {{"ws", Kind::kU32}, {"user", Kind::kUser}, {"cost", Kind::kU64},
                             {"at_ms", Kind::kU64}, {"idempotency", Kind::kIdempotency}};
constexpr Field kChargeCompact[] = {{"ws", Kind::kUVar32}, {"user", Kind::kUVarUser}, {"cost", Kind::kUVar64},
                                    {"at_ms", Kind::kUVar64}, {"idempotency", Kind::kIdempotency}};
constexpr Field kChargeModel[] = {{"ws", Kind::kUVar32},     {"user", Kind::kUVarUser},
                                  {"model", Kind::kUVarModel}, {"cost", Kind::kUVar64},
                                  {"at_ms", Kind::kUVar64},    {"idempotency", Kind::kIdempotency}};
constexpr Field kReserve[] = {{"ws", Kind::kU32},     {"user", Kind::kUser},          {"model", Kind::kStr},
                              {"held", Kind::kU64},   {"expires_at_ms", Kind::kU64}, {"at_ms", Kind::kU64},
                              {"ttl_ms", Kind::kU64}, {"idempotency", Kind::kIdempotency}};
constexpr Field kReservePriced[] = {{"ws", Kind::kU32},          {"user", Kind::kUser},          {"model", Kind::kStr},
                                    {"unit", Kind::kUnit},        {"rate_milli", Kind::kU32},     {"held", Kind::kU64},
                                    {"expires_at_ms", Kind::kU64}, {"at_ms", Kind::kU64},         {"ttl_ms", Kind::kU64},
                                    {"idempotency", Kind::kIdempotency}};
constexpr Field kRefundToAllowance[] = {{"charge_seq", Kind::kU64}, {"ws", Kind::kU32}, {"cost", Kind::kU64}};
constexpr Field kSetPlan[] = {{"ws", Kind::kWsRef},         {"limit", Kind::kLimit},        {"region", Kind::kRegion},
                              {"interval", Kind::kU8},        {"anchor_ms", Kind::kU64},
                              {"period_start_ms", Kind::kU64}, {"period_end_ms", Kind::kLimit}, {"plan_priority", Kind::kU16},
                              {"rollover_max", Kind::kU64},    {"rollover_periods", Kind::kU32}, {"overage_mode", Kind::kU8},
                              {"overage_limit", Kind::kLimit}, {"pending_limit", Kind::kU64}};
constexpr Field kRollover[] = {{"ws", Kind::kU32}, {"boundaries", Kind::kU64}, {"period_start_ms", Kind::kU64},
                               {"period_end_ms", Kind::kLimit}};
constexpr Field kGrant[] = {{"ws", Kind::kU32},       {"grant", Kind::kUVar32},      {"source", Kind::kU8},
                            {"priority", Kind::kU16}, {"amount", Kind::kU64},        {"expires_at_ms", Kind::kU64},
                            {"flags", Kind::kU8},     {"created_ms", Kind::kU64},    {"id", Kind::kStr}};
constexpr Field kGrantEnd[] = {{"ws", Kind::kU32}, {"grant", Kind::kUVar32}, {"reason", Kind::kU8}};
constexpr Field kRefundSources[] = {{"charge_seq", Kind::kU64}, {"ws", Kind::kU32},       {"user", Kind::kU32},
                                    {"cost", Kind::kU64},       {"past", Kind::kU8},      {"to_plan", Kind::kU64},  {"to_new_grant", Kind::kU64},
                                    {"parts", Kind::kParts}};
constexpr Field kCommit[] = {{"reservation_seq", Kind::kU64}, {"cost", Kind::kU64}, {"at_ms", Kind::kU64}};
constexpr Field kSettle[] = {{"reservation_seq", Kind::kU64}};
// The catalog's JSON is shown by its size only: it is up to 512 KiB, one line per record.
constexpr Field kSetCatalog[] = {{"version", Kind::kU64}, {"catalog_bytes", Kind::kCatalog}};
// A token entry (docs/wal-records.md, "Token records"): its digest by its first 8 bytes only.
constexpr Field kTokenAdd[] = {{"token", Kind::kToken}};
constexpr Field kTokenRevoke[] = {{"id", Kind::kU64}};
constexpr Field kSetAlerts[] = {{"ws", Kind::kU32}, {"at_ms", Kind::kU64}, {"alerts", Kind::kAlerts}};
// A webhook's secret is shown by its size only (it signs requests; never print it).
constexpr Field kWebhookAdd[] = {{"webhook", Kind::kWebhook}, {"cursors", Kind::kCursors}};
constexpr Field kWebhookDelete[] = {{"webhook", Kind::kUVar32}};
constexpr Field kWebhookProgress[] = {{"webhook", Kind::kUVar32}, {"next_seq", Kind::kUVar64},
                                      {"given_up", Kind::kUVar64}, {"dropped", Kind::kUVar64}};
constexpr Field kRefund[] = {{"charge_seq", Kind::kU64}, {"ws", Kind::kU32}, {"user", Kind::kU32}, {"cost", Kind::kU64}};

std::span<const Field> Schema(RecordType t) {
  switch (t) {
    case RecordType::kCreateWorkspace: return kCreate;
    case RecordType::kUpdateWorkspace: return kUpdate;
    case RecordType::kSetUserLimit: return kUserLimit;
    case RecordType::kTopUp: return kTopUp;
    case RecordType::kResetPeriod: return kReset;
    case RecordType::kCharge: return kCharge;
    case RecordType::kReserve: return kReserve;
    case RecordType::kCommit: return kCommit;
    case RecordType::kRelease:
    case RecordType::kExpire: return kSettle;
    case RecordType::kRefund: return kRefund;
    case RecordType::kChargeCompact: return kChargeCompact;
    case RecordType::kReservePriced: return kReservePriced;
    case RecordType::kRefundToAllowance: return kRefundToAllowance;
    case RecordType::kSetPlan: return kSetPlan;
    case RecordType::kRollover: return kRollover;
    case RecordType::kGrant: return kGrant;
    case RecordType::kGrantEnd: return kGrantEnd;
    case RecordType::kRefundSources: return kRefundSources;
    case RecordType::kSetCatalog: return kSetCatalog;
    case RecordType::kTokenAdd: return kTokenAdd;
    case RecordType::kTokenRevoke: return kTokenRevoke;
    case RecordType::kSetAlerts: return kSetAlerts;
    case RecordType::kWebhookAdd: return kWebhookAdd;
    case RecordType::kWebhookDelete: return kWebhookDelete;
    case RecordType::kWebhookProgress: return kWebhookProgress;
    case RecordType::kChargeModel: return kChargeModel;
  }
  return {};
}

boost::json::value Limit(uint64_t v) { return v == UINT64_MAX ? boost::json::value(nullptr) : boost::json::value(v); }

}  // namespace

Result<boost::json::object> DescribeRecord(uint8_t type, std::string_view payload) {
  if (type == 0 || RecordTypeName(type) == "unknown") {
    return Status(Code::kCorruption, "unknown record type " + std::to_string(type));
  }
  RecordReader r(payload);
  boost::json::object o;
  o["type"] = RecordTypeName(type);
  o["shard"] = r.U16();
  o["record_no"] = r.U64();
  for (const Field& f : Schema(RecordType(type))) {
    switch (f.kind) {
      case Kind::kU8: o[f.name] = r.U8(); break;
      case Kind::kUnit: {
        const uint8_t code = r.U8();
        if (code > kMaxUnitCode) return Status(Code::kCorruption, "reserve_priced record has unit code " + std::to_string(code));
        o[f.name] = UnitName(Unit(code));
        break;
      }
      case Kind::kU16: o[f.name] = r.U16(); break;
      case Kind::kWsRef: {
        const uint32_t ws = r.U32();
        if (ws == kNewWorkspace) {
          o[f.name] = boost::json::object{{"new", r.Str8()}};
        } else {
          o[f.name] = ws;
        }
        break;
      }
      case Kind::kU32: o[f.name] = r.U32(); break;
      case Kind::kParts: {
        boost::json::array parts;
        for (uint8_t n = r.U8(), i = 0; r.ok() && i < n; ++i) {
          const uint32_t grant = r.UVar32();
          parts.push_back(boost::json::object{{"grant", grant}, {"amount", r.U64()}});
        }
        o[f.name] = std::move(parts);
        break;
      }
      case Kind::kU64: o[f.name] = r.U64(); break;
      case Kind::kLimit: o[f.name] = Limit(r.U64()); break;
      case Kind::kStr: o[f.name] = r.Str8(); break;
      case Kind::kRegion: o[f.name] = r.U8() == 0 ? "global" : "cn"; break;
      case Kind::kUser:
      case Kind::kUVarUser: {
        const UserRef u = f.kind == Kind::kUser ? r.User() : r.UVarUser();
        if (u.is_new()) {
          o[f.name] = boost::json::object{{"new", u.new_id}};
        } else {
          o[f.name] = u.index;   // the compact form shows the index too, not index + 1
        }
        break;
      }
      case Kind::kCatalog: {
        const uint32_t n = r.U32();
        (void)r.Bytes(n);
        o[f.name] = n;
        break;
      }
      case Kind::kAlerts: {
        boost::json::array alerts;
        const uint8_t n = r.U8();
        for (uint8_t i = 0; r.ok() && i < n; ++i) {
          const std::string_view name = r.Str8();
          const uint8_t when = r.U8();
          const uint64_t at = r.U64();
          alerts.push_back(boost::json::object{{"name", name}, {"when", when}, {"at", at}});
        }
        o[f.name] = std::move(alerts);
        break;
      }
      case Kind::kWebhook: {
        WebhookInfo w;
        if (!DecodeWebhookEntry(r, w)) return Status(Code::kCorruption, "webhook_add record is malformed");
        o[f.name] = w.number;
        o["url"] = w.url;
        o["events"] = w.events;
        if (w.workspaces) {
          boost::json::array a;
          for (const std::string& id : *w.workspaces) a.emplace_back(id);
          o["workspaces"] = std::move(a);
        } else {
          o["workspaces"] = nullptr;
        }
        o["secret_bytes"] = w.secret.size();
        o["created_ms"] = w.created_ms;
        break;
      }
      case Kind::kCursors: {
        boost::json::array a;
        for (uint16_t n = r.U16(), i = 0; r.ok() && i < n; ++i) a.emplace_back(r.UVar64());
        o[f.name] = std::move(a);
        break;
      }
      case Kind::kUVarModel: {
        // The slot itself (not slot + 1), or the new model's id and category code.
        const uint32_t v = r.UVar32();
        if (v == 0) {
          const std::string_view id = r.Str8();
          o[f.name] = boost::json::object{{"new", id}, {"category", r.U8()}};
        } else {
          o[f.name] = v - 1;
        }
        break;
      }
      case Kind::kUVar32: o[f.name] = r.UVar32(); break;
      case Kind::kToken: {
        Result<TokenInfo> t = ReadTokenEntry(r);
        if (!t.ok()) return t.status();
        o["id"] = t->id;
        o["role"] = t->role;
        static constexpr char kHex[] = "0123456789abcdef";
        std::string digest;
        for (size_t i = 0; i < 8; ++i) {
          digest.push_back(kHex[t->digest[i] >> 4]);
          digest.push_back(kHex[t->digest[i] & 15]);
        }
        o["digest"] = digest + "...";
        o["created_at_ms"] = t->created_at_ms;
        o["expires_at_ms"] = t->expires_at_ms;
        o["name"] = t->name;
        if (t->scoped) {
          boost::json::array ws;
          for (const std::string& w : t->workspaces) ws.emplace_back(w);
          o["workspaces"] = std::move(ws);
        } else {
          o["workspaces"] = "all";
        }
        break;
      }
      case Kind::kUVar64: o[f.name] = r.UVar64(); break;
      case Kind::kIdempotency: {
        if (r.U8() == 0) {
          o[f.name] = nullptr;
          break;
        }
        boost::json::object idem;
        idem["id"] = r.Str8();
        idem["model"] = r.Str8();
        idem["quantity"] = r.U64();
        idem["seconds_milli"] = r.U64();
        idem["outputs"] = r.U32();
        idem["formats"] = r.U32();
        o[f.name] = std::move(idem);
        break;
      }
    }
  }
  if (!r.ok()) return Status(Code::kCorruption, std::string(RecordTypeName(type)) + " record is truncated");
  if (!r.done()) return Status(Code::kCorruption, std::string(RecordTypeName(type)) + " record has trailing bytes");
  return o;
}

std::string RecordToText(const boost::json::object& record) {
  std::string line;
  for (const auto& [key, value] : record) {
    if (key == "type") {
      line += value.as_string().c_str();
      continue;
    }
    line += ' ';
    line += key;
    line += '=';
    if (value.is_string()) {
      line += value.as_string().c_str();
    } else if (value.is_null()) {
      line += key == "idempotency" ? "none" : "unlimited";
    } else {
      line += boost::json::serialize(value);
    }
  }
  return line;
}

}  // namespace genledger::ledger
