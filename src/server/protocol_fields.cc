// The wire format's vocabulary (protocol.h): error values and their HTTP statuses, op kinds, the
// field table and per-operation field checks, ids, and query parameters. The request body parser
// that fills OpRequest is in protocol_parse.cc.

#include <charconv>
#include <optional>
#include <string>

#include "server/protocol.h"

namespace genledger::server {

WireError WireError::Make(int http, std::string_view code, std::string message) {
  WireError e;
  e.http = http;
  e.code.assign(code);
  e.message = std::move(message);
  return e;
}

int HttpStatus(Code code) noexcept {
  switch (code) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument:
    case Code::kInvalidQuantity:
    case Code::kInvalidId:
    case Code::kUnknownModel:
    case Code::kCommitExceedsHold: return 400;
    case Code::kInsufficientGenerations:
    case Code::kUserLimitExceeded: return 402;
    case Code::kModelNotAvailableInRegion: return 403;
    case Code::kUnknownWorkspace:
    case Code::kUnknownReservation:
    case Code::kUnknownCharge:
    case Code::kUnknownGrant:
    case Code::kNotFound: return 404;
    case Code::kIdempotencyConflict:
    case Code::kReservationSettled:
    case Code::kAlreadyRefunded: return 409;
    case Code::kTooManyReservations:
    case Code::kCapacityExhausted: return 429;
    case Code::kUnavailable:
    case Code::kOverloaded: return 503;
    case Code::kCorruption:
    case Code::kIOError:
    case Code::kInternal: return 500;
  }
  return 500;
}

WireError WireError::FromStatus(const Status& s) {
  if (s.ok()) return {};
  return Make(HttpStatus(s.code()), CodeName(s.code()), std::string(s.message()));
}

OpKind ParseOpKind(std::string_view n) noexcept {
  if (n == "charge") return OpKind::kCharge;
  if (n == "quote") return OpKind::kQuote;
  if (n == "reserve") return OpKind::kReserve;
  if (n == "commit") return OpKind::kCommit;
  if (n == "release") return OpKind::kRelease;
  if (n == "refund") return OpKind::kRefund;
  if (n == "subscribe") return OpKind::kSubscribe;
  if (n == "unsubscribe") return OpKind::kUnsubscribe;
  return OpKind::kNone;
}

namespace {

struct FieldEntry {
  std::string_view name;
  uint32_t bit;
};
constexpr FieldEntry kFields[] = {
    {"op", kFOp},           {"workspace", kFWorkspace}, {"user", kFUser},
    {"model", kFModel},     {"quantity", kFQuantity},   {"seconds", kFSeconds},
    {"outputs", kFOutputs}, {"formats", kFFormats},     {"id", kFId},
    {"ttl_ms", kFTtl},      {"reservation", kFReservation}, {"charge", kFCharge},
    {"seq", kFSeq},         {"limit", kFLimit},         {"region", kFRegion},
    {"amount", kFAmount},
    // Admin only; after the gate ops' fields, so that their lookups stay short.
    {"period", kFPeriod},   {"plan_priority", kFPlanPriority}, {"rollover", kFRollover},
    {"overage_mode", kFOverageMode}, {"overage_limit", kFOverageLimit},
    {"limit_change", kFLimitChange}, {"priority", kFPriority}, {"expires_at", kFExpiresAt},
    {"source", kFSource},
};

}  // namespace

uint32_t FieldBitOf(std::string_view name) noexcept {
  for (const auto& f : kFields)
    if (f.name == name) return f.bit;
  return 0;
}

bool ParseU64Text(std::string_view t, uint64_t& out) noexcept {
  if (t.empty() || t.size() > 20) return false;
  for (char c : t)
    if (c < '0' || c > '9') return false;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  return ec == std::errc() && p == t.data() + t.size();
}

uint32_t AllowedFields(OpKind k) noexcept {
  constexpr uint32_t kCharge =
      kFWorkspace | kFUser | kFModel | kFQuantity | kFSeconds | kFOutputs | kFFormats | kFId;
  switch (k) {
    case OpKind::kCharge:
    case OpKind::kQuote: return kCharge;
    case OpKind::kReserve: return kCharge | kFTtl;
    case OpKind::kCommit: return kFReservation | kFQuantity | kFSeconds | kFOutputs | kFFormats;
    case OpKind::kRelease: return kFReservation;
    case OpKind::kRefund: return kFCharge;
    case OpKind::kSubscribe:
    case OpKind::kUnsubscribe: return kFWorkspace;
    case OpKind::kNone: break;
  }
  return 0;
}

std::string_view FieldName(uint32_t bit) noexcept {
  for (const auto& f : kFields)
    if (f.bit == bit) return f.name;
  return "?";
}

WireError CheckFields(const OpRequest& r, uint32_t allowed, uint32_t required) {
  uint32_t extra = r.present & ~allowed;
  if (extra) {
    uint32_t bit = extra & (~extra + 1);
    return WireError::Make(400, "invalid_argument",
                           "unknown field '" + std::string(FieldName(bit)) + "' for this operation");
  }
  uint32_t missing = required & ~r.present;
  if (missing) {
    uint32_t bit = missing & (~missing + 1);
    return WireError::Make(400, "invalid_argument",
                           "missing field '" + std::string(FieldName(bit)) + "'");
  }
  return {};
}

std::string FormatChargeId(uint64_t id) { return "ch_" + std::to_string(id); }
std::string FormatReservationId(uint64_t id) { return "rs_" + std::to_string(id); }

bool ParseGrantId(std::string_view text, uint32_t& out) noexcept {
  uint64_t n = 0;
  if (!ParsePrefixedId(text, "gr_", n) || n == 0 || n > UINT32_MAX) return false;
  out = uint32_t(n);
  return true;
}

bool ParsePrefixedId(std::string_view text, std::string_view prefix, uint64_t& out) noexcept {
  if (text.size() <= prefix.size() || text.substr(0, prefix.size()) != prefix) return false;
  std::string_view digits = text.substr(prefix.size());
  if (digits.size() > 1 && digits[0] == '0') return false;
  return ParseU64Text(digits, out);
}

bool FindQueryParam(std::string_view query, std::string_view name, std::optional<std::string>* value) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    const std::string_view raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    std::string decoded;
    decoded.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        decoded.push_back(' ');
      } else if (raw[i] != '%') {
        decoded.push_back(raw[i]);
      } else {
        const int hi = i + 2 < raw.size() ? hex(raw[i + 1]) : -1;
        const int lo = i + 2 < raw.size() ? hex(raw[i + 2]) : -1;
        if (hi < 0 || lo < 0) return false;
        decoded.push_back(char(hi * 16 + lo));
        i += 2;
      }
    }
    *value = std::move(decoded);
    return true;
  }
  *value = std::nullopt;
  return true;
}

}  // namespace genledger::server
