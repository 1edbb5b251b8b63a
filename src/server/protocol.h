// Wire format of the HTTP/WebSocket API (docs/api.md): request bodies parsed straight into
// typed structs with a streaming Boost.JSON parser (numbers keep their exact text, so
// `seconds` never passes through a double), and hand-written JSON encoding of results.
// No sockets here: everything is unit-testable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "genledger/ledger.h"
#include "genledger/status.h"

namespace genledger::server {

// An API-level error: HTTP status, wire code, message (+ cost/remaining for 402).
// http == 0 means "no error".
struct WireError {
  int http = 0;
  std::string code;
  std::string message;
  bool has_cost = false;
  uint64_t cost = 0;
  uint64_t remaining = 0;

  bool ok() const noexcept { return http == 0; }
  static WireError Make(int http, std::string_view code, std::string message);
  // From a ledger Status: HttpStatus()/CodeName()/message().
  static WireError FromStatus(const Status& s);
};

// The HTTP status a request failing with `code` answers with (200 for kOk); part of the public
// API (docs/api.md, "Errors"). The core Status knows nothing of HTTP: this mapping is the server's.
int HttpStatus(Code code) noexcept;

// kSubscribe / kUnsubscribe: WebSocket frames only (live streams, docs/events.md).
enum class OpKind : uint8_t { kNone, kCharge, kQuote, kReserve, kCommit, kRelease, kRefund, kSubscribe, kUnsubscribe };
OpKind ParseOpKind(std::string_view name) noexcept;

// One bit per known request field.
enum FieldBit : uint32_t {
  kFOp = 1u << 0,
  kFWorkspace = 1u << 1,
  kFUser = 1u << 2,
  kFModel = 1u << 3,
  kFQuantity = 1u << 4,
  kFSeconds = 1u << 5,
  kFOutputs = 1u << 6,
  kFFormats = 1u << 7,
  kFId = 1u << 8,
  kFTtl = 1u << 9,
  kFReservation = 1u << 10,
  kFCharge = 1u << 11,
  kFSeq = 1u << 12,
  kFLimit = 1u << 13,
  kFRegion = 1u << 14,
  kFAmount = 1u << 15,
  // Subscription settings (PUT /v1/workspaces/{ws}) and grants (POST .../grants): admin only.
  kFPeriod = 1u << 16,        // {"interval", "anchor"}
  kFPlanPriority = 1u << 17,
  kFRollover = 1u << 18,      // {"max", "periods"} or null
  kFOverageMode = 1u << 19,
  kFOverageLimit = 1u << 20,
  kFLimitChange = 1u << 21,   // "now"
  kFPriority = 1u << 22,
  kFExpiresAt = 1u << 23,
  kFSource = 1u << 24,
};
// Members of the object fields "period" and "rollover" (OpRequest::sub_present).
enum SubFieldBit : uint8_t {
  kSInterval = 1u << 0,
  kSAnchor = 1u << 1,
  kSMax = 1u << 2,
  kSPeriods = 1u << 3,
};
// The name of field `bit` ("?" for none), and the bit of field `name` (0 for an unknown name).
std::string_view FieldName(uint32_t bit) noexcept;
uint32_t FieldBitOf(std::string_view name) noexcept;

// Digits only (JSON integer text without sign/fraction/exponent) that fit a u64: true and `out`
// set, else false.
bool ParseU64Text(std::string_view text, uint64_t& out) noexcept;

// Every field any request body may carry, typed. Which ones a given operation accepts is
// checked afterwards by CheckFields.
struct OpRequest {
  uint32_t present = 0;          // FieldBit set
  OpKind op = OpKind::kNone;     // "op" (batch / WebSocket)
  std::string workspace, user, model, id, region;
  uint64_t quantity = 0;
  uint64_t seconds_milli = 0;
  uint64_t outputs = 0;
  uint64_t formats = 0;
  uint64_t ttl_ms = 0;
  uint64_t seq = 0;
  uint64_t amount = 0;
  uint64_t limit = kUnlimited;   // null -> kUnlimited
  // "reservation" / "charge" ids; *_known false when the string is not rs_<u64> / ch_<u64>.
  uint64_t reservation_id = 0;
  bool reservation_known = false;
  uint64_t charge_id = 0;
  bool charge_known = false;
  // Admin fields, parsed to their types as they are read (times: ms since the epoch, from an
  // integer or an RFC 3339 string).
  uint8_t sub_present = 0;       // SubFieldBit set
  Interval interval = Interval::kNone;
  uint64_t anchor_ms = 0;
  RolloverSpec rollover;         // null -> max 0 (off)
  uint64_t plan_priority = 0;
  OverageMode overage_mode = OverageMode::kHard;
  uint64_t overage_limit = kUnlimited;   // null -> kUnlimited
  uint64_t priority = kDefaultGrantPriority;
  uint64_t expires_at_ms = 0;    // null -> 0 (never)
  GrantSource source = GrantSource::kTopup;
  // The first problem found in this op's own fields (unknown/duplicate field, wrong type, bad
  // number). A bad op in a batch fails alone.
  WireError error;

  bool has(uint32_t bit) const noexcept { return (present & bit) != 0; }
};

// What shape the body must have.
enum class BodyShape : uint8_t {
  kObject,   // one object: a single op or an admin body
  kBatch,    // {"ops":[{...},...]}
  kFrame,    // a WebSocket frame: one object, or an array of objects
};

struct ParsedBody {
  WireError error;                // whole-body error: bad_json / invalid_argument / too_large
  bool is_array = false;          // kFrame: the frame was an array
  std::vector<OpRequest> ops;     // kObject: exactly one on success
};

// Parses `text` into `out` (cleared first; capacity reused). max_ops bounds the batch/array.
// An empty body is accepted for kObject as `{}` only when allow_empty.
void ParseBody(std::string_view text, BodyShape shape, size_t max_ops, ParsedBody& out,
               bool allow_empty = false);

// Fields each operation accepts (besides "op" and "seq" in batch/WebSocket).
uint32_t AllowedFields(OpKind k) noexcept;
// Fails (invalid_argument) on a present field not in `allowed`, or a missing required one.
WireError CheckFields(const OpRequest& r, uint32_t allowed, uint32_t required);

// Ids on the wire: "ch_<u64>" / "rs_<u64>". Strict: no sign, no leading zeros, fits u64.
std::string FormatChargeId(uint64_t id);
std::string FormatReservationId(uint64_t id);
bool ParsePrefixedId(std::string_view text, std::string_view prefix, uint64_t& out) noexcept;

// --- Encoding helpers (append to `out`) ---
void AppendJsonString(std::string& out, std::string_view s);
void AppendU64(std::string& out, uint64_t v);
// A remaining/limit value: kUnlimited -> null.
void AppendLimit(std::string& out, uint64_t v);
// `"error":{"code":..,"message":..[,"cost":..,"remaining":..]}` (no surrounding braces).
void AppendErrorMember(std::string& out, const WireError& e);
// `{"error":{...}}`
std::string ErrorBody(const WireError& e);

// Members (no braces) of each operation's success result.
void AppendChargeFields(std::string& out, const ChargeResult& r);
// `with_cost`: the quote gave a usage (else only the maximum is asked: no cost, no affordable);
// `per_second`: the maximum is "max_seconds" (else "max_quantity").
void AppendQuoteFields(std::string& out, const ChargeResult& r, bool with_cost, bool per_second);
void AppendReserveFields(std::string& out, const ReserveResult& r);
void AppendCommitFields(std::string& out, const CommitResult& r);
void AppendReleaseFields(std::string& out, const ReleaseResult& r);
void AppendRefundFields(std::string& out, const RefundResult& r);
void AppendWorkspace(std::string& out, const WorkspaceInfo& w);   // full object
// A grant of GET/POST/DELETE /v1/workspaces/{ws}/grants (full object); g.replayed adds
// "replayed":true (an idempotent retry of POST).
void AppendGrant(std::string& out, const GrantInfo& g);
// "gr_<n>" (n > 0), strict like ParsePrefixedId; false for anything else ("plan" included).
bool ParseGrantId(std::string_view text, uint32_t& out) noexcept;
// {"users":[...],"next_cursor":"..." or null}: one page of GET /v1/workspaces/{ws}/users.
void AppendUsers(std::string& out, const UserPage& page);  // full object

// The value of parameter `name` in a URL query string (the target after '?'), percent-decoded
// ('+' decodes to a space): *value is nullopt when absent (the first occurrence counts). False,
// *value untouched, when that value has a malformed %-escape.
bool FindQueryParam(std::string_view query, std::string_view name, std::optional<std::string>* value);

}  // namespace genledger::server
