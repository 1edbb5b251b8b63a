// Request body parsing (protocol.h): bodies through a streaming Boost.JSON parser into OpRequest,
// each field typed and range-checked as it is read. The field table, the per-operation field
// checks, ids, query parameters and error values are in protocol_fields.cc.

#include "server/protocol.h"

#include <boost/json/basic_parser_impl.hpp>
#include <cstring>

#include "genledger/catalog.h"
#include "genledger/period.h"
#include "util/utf8.h"

namespace genledger::server {

namespace json = boost::json;

namespace {

// A field name fit for an error message: at most 64 bytes, cut on a UTF-8 boundary.
std::string ShortName(std::string_view s) { return util::Utf8Shorten(s, 64); }

enum class ValKind : uint8_t { kString, kNumber, kBool, kNull, kObject, kArray };

std::string_view KindName(ValKind k) {
  switch (k) {
    case ValKind::kString: return "a string";
    case ValKind::kNumber: return "a number";
    case ValKind::kBool: return "a boolean";
    case ValKind::kNull: return "null";
    case ValKind::kObject: return "an object";
    case ValKind::kArray: return "an array";
  }
  return "?";
}

struct Value {
  ValKind kind;
  std::string_view text;   // string contents or number text
};

void SetError(OpRequest& r, int http, std::string_view code, std::string msg) {
  if (r.error.ok()) r.error = WireError::Make(http, code, std::move(msg));
}

void TypeError(OpRequest& r, std::string_view field, std::string_view want, ValKind got) {
  SetError(r, 400, "invalid_argument",
           "field '" + std::string(field) + "' must be " + std::string(want) + ", not " +
               std::string(KindName(got)));
}

// Integer field in [lo, hi]; out-of-range or non-integer numbers fail with `code`.
bool IntField(OpRequest& r, std::string_view field, const Value& v, uint64_t lo, uint64_t hi,
              std::string_view code, uint64_t& out) {
  if (v.kind != ValKind::kNumber) {
    TypeError(r, field, "an integer", v.kind);
    return false;
  }
  uint64_t x = 0;
  if (!ParseU64Text(v.text, x) || x < lo || x > hi) {
    std::string range = hi == UINT64_MAX
                            ? (lo == 0 ? std::string("a non-negative integer")
                                       : std::string("a positive integer"))
                            : "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    SetError(r, 400, code,
             "field '" + std::string(field) + "' must be " + range + ", got " + ShortName(v.text));
    return false;
  }
  out = x;
  return true;
}

// A time: milliseconds since the Unix epoch in [lo, kMaxTimeMs], or an RFC 3339 string.
void TimeField(OpRequest& r, std::string_view field, const Value& v, uint64_t lo, uint64_t& out) {
  if (v.kind == ValKind::kString) {
    Result<uint64_t> t = ParseTimeMs(v.text);
    if (t.ok() && *t >= lo) {
      out = *t;
      return;
    }
    SetError(r, 400, "invalid_argument",
             "field '" + std::string(field) + "': " +
                 (t.ok() ? std::string("the time must not be 1970-01-01T00:00:00Z") : std::string(t.status().message())));
    return;
  }
  if (v.kind != ValKind::kNumber) {
    return TypeError(r, field, "a time (milliseconds since the Unix epoch, or an RFC 3339 string)", v.kind);
  }
  IntField(r, field, v, lo, kMaxTimeMs, "invalid_argument", out);
}

// A member of the object field `parent` ("period" or "rollover").
void AssignSubField(OpRequest& r, uint32_t parent, std::string_view key, const Value& v) {
  const std::string_view parent_name = FieldName(parent);
  const std::string name = std::string(parent_name) + "." + ShortName(key);
  uint8_t bit = 0;
  if (parent == kFPeriod) {
    bit = key == "interval" ? kSInterval : key == "anchor" ? kSAnchor : 0;
  } else {
    bit = key == "max" ? kSMax : key == "periods" ? kSPeriods : 0;
  }
  if (bit == 0) return SetError(r, 400, "invalid_argument", "unknown field '" + name + "'");
  if (r.sub_present & bit) return SetError(r, 400, "invalid_argument", "duplicate field '" + name + "'");
  r.sub_present |= bit;
  switch (bit) {
    case kSInterval: {
      if (v.kind != ValKind::kString) return TypeError(r, name, "a string", v.kind);
      Result<Interval> i = ParseInterval(v.text);
      if (!i.ok()) return SetError(r, 400, "invalid_argument", "field '" + name + "': " + std::string(i.status().message()));
      r.interval = *i;
      return;
    }
    case kSAnchor: return TimeField(r, name, v, 0, r.anchor_ms);
    case kSMax: {
      uint64_t max = 0;
      if (IntField(r, name, v, 0, kMaxLimit, "invalid_argument", max)) r.rollover.max = max;
      return;
    }
    case kSPeriods: {
      uint64_t periods = 0;
      if (IntField(r, name, v, 1, kMaxRolloverPeriods, "invalid_argument", periods)) r.rollover.periods = uint32_t(periods);
      return;
    }
    default: return;
  }
}

void AssignField(OpRequest& r, std::string_view key, const Value& v) {
  uint32_t bit = FieldBitOf(key);
  if (bit == 0) {
    SetError(r, 400, "invalid_argument", "unknown field '" + ShortName(key) + "'");
    return;
  }
  if (r.present & bit) {
    SetError(r, 400, "invalid_argument", "duplicate field '" + std::string(key) + "'");
    return;
  }
  r.present |= bit;
  auto str = [&](std::string& dst) {
    if (v.kind != ValKind::kString) return TypeError(r, key, "a string", v.kind);
    dst.assign(v.text);
  };
  switch (bit) {
    case kFOp:
      if (v.kind != ValKind::kString) return TypeError(r, key, "a string", v.kind);
      r.op = ParseOpKind(v.text);
      if (r.op == OpKind::kNone)
        SetError(r, 400, "invalid_argument", "unknown op '" + ShortName(v.text) + "'");
      return;
    case kFWorkspace: return str(r.workspace);
    case kFUser: return str(r.user);
    case kFModel: return str(r.model);
    case kFId: return str(r.id);
    case kFRegion: return str(r.region);
    case kFQuantity:
      IntField(r, key, v, 1, UINT64_MAX, "invalid_quantity", r.quantity);
      return;
    case kFSeconds: {
      if (v.kind != ValKind::kNumber) return TypeError(r, key, "a number", v.kind);
      Result<uint64_t> ms = ParseDecimalMilli(v.text, kMaxSecondsMilli);
      if (!ms.ok()) {
        SetError(r, 400, "invalid_quantity",
                 "field 'seconds' must be a positive number with at most 3 decimals, at most " +
                     std::to_string(kMaxSecondsMilli / 1000) + ", got " + ShortName(v.text));
        return;
      }
      if (*ms == 0) {
        SetError(r, 400, "invalid_quantity", "field 'seconds' must be positive");
        return;
      }
      r.seconds_milli = *ms;
      return;
    }
    case kFOutputs:
      IntField(r, key, v, 1, kMaxOutputs, "invalid_quantity", r.outputs);
      return;
    case kFFormats:
      IntField(r, key, v, 0, kMaxFormats, "invalid_quantity", r.formats);
      return;
    case kFTtl:
      IntField(r, key, v, 1, UINT64_MAX, "invalid_argument", r.ttl_ms);
      return;
    case kFSeq:
      // An invalid seq is not echoed back.
      if (!IntField(r, key, v, 0, UINT64_MAX, "invalid_argument", r.seq)) r.present &= ~kFSeq;
      return;
    case kFAmount:
      IntField(r, key, v, 1, kMaxLimit, "invalid_argument", r.amount);
      return;
    case kFLimit:
      if (v.kind == ValKind::kNull) {
        r.limit = kUnlimited;
        return;
      }
      if (v.kind != ValKind::kNumber) return TypeError(r, key, "an integer or null", v.kind);
      IntField(r, key, v, 0, kMaxLimit, "invalid_argument", r.limit);
      return;
    case kFReservation:
      if (v.kind != ValKind::kString) return TypeError(r, key, "a string", v.kind);
      r.reservation_known = ParsePrefixedId(v.text, "rs_", r.reservation_id);
      return;
    case kFCharge:
      if (v.kind != ValKind::kString) return TypeError(r, key, "a string", v.kind);
      r.charge_known = ParsePrefixedId(v.text, "ch_", r.charge_id);
      return;
    case kFPeriod: return TypeError(r, key, "an object", v.kind);
    case kFRollover:
      if (v.kind == ValKind::kNull) {
        r.rollover = RolloverSpec{};   // off
        return;
      }
      return TypeError(r, key, "an object or null", v.kind);
    case kFPlanPriority:
      IntField(r, key, v, 0, kMaxGrantPriority, "invalid_argument", r.plan_priority);
      return;
    case kFPriority:
      IntField(r, key, v, 0, kMaxGrantPriority, "invalid_argument", r.priority);
      return;
    case kFOverageMode: {
      if (v.kind != ValKind::kString) return TypeError(r, key, "a string", v.kind);
      Result<OverageMode> m = ParseOverageMode(v.text);
      if (!m.ok()) return SetError(r, 400, "invalid_argument", "field 'overage_mode' must be \"hard\", \"soft\" or \"shadow\"");
      r.overage_mode = *m;
      return;
    }
    case kFOverageLimit:
      if (v.kind == ValKind::kNull) {
        r.overage_limit = kUnlimited;
        return;
      }
      if (v.kind != ValKind::kNumber) return TypeError(r, key, "an integer or null", v.kind);
      IntField(r, key, v, 0, kMaxLimit, "invalid_argument", r.overage_limit);
      return;
    case kFLimitChange:
      if (v.kind != ValKind::kString) return TypeError(r, key, "a string", v.kind);
      if (v.text != "now") SetError(r, 400, "invalid_argument", "field 'limit_change' must be \"now\" (the only value)");
      return;
    case kFExpiresAt:
      if (v.kind == ValKind::kNull) {
        r.expires_at_ms = 0;
        return;
      }
      // 0 would mean "never" to the ledger: the epoch itself is refused (it is past anyway).
      return TimeField(r, key, v, 1, r.expires_at_ms);
    case kFSource: {
      if (v.kind != ValKind::kString) return TypeError(r, key, "a string", v.kind);
      Result<GrantSource> g = ParseGrantSource(v.text);
      if (!g.ok()) return SetError(r, 400, "invalid_argument", "field 'source' must be \"topup\", \"promo\" or \"adjustment\"");
      r.source = *g;
      return;
    }
    default: return;
  }
}

// Streaming handler: builds OpRequests directly, keeping every number's exact text.
class BodyHandler {
 public:
  static constexpr std::size_t max_object_size = 256;
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = 4096;
  static constexpr std::size_t max_string_size = 1 << 20;

  BodyHandler(BodyShape shape, size_t max_ops, ParsedBody& out)
      : shape_(shape), max_ops_(max_ops), out_(out) {}

  bool saw_ops() const { return saw_ops_; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_object_begin(json::error_code& ec) {
    ++depth_;
    if (depth_ == 1) {
      if (shape_ == BodyShape::kBatch) {
        op_depth_ = 3;
        return true;
      }
      op_depth_ = 1;
      return BeginOp(ec);
    }
    if (skip_depth_) return true;
    if (InOp() && depth_ == op_depth_ + 1) {
      if (BeginNested(Cur())) return true;
      TypeError(Cur(), key_, "a scalar", ValKind::kObject);
      skip_depth_ = depth_;
      return true;
    }
    if (InOp() && depth_ == op_depth_ + 2) {   // inside "period" / "rollover"
      TypeError(Cur(), NestedName(), "a scalar", ValKind::kObject);
      skip_depth_ = depth_;
      return true;
    }
    if (depth_ == op_depth_ && InOpsArray()) return BeginOp(ec);
    if (shape_ == BodyShape::kBatch && depth_ == 2) {
      if (key_ != "ops")
        return Fail(ec, 400, "invalid_argument", "unknown field '" + ShortName(key_) + "'");
      return Fail(ec, 400, "invalid_argument", "field 'ops' must be an array, not an object");
    }
    return true;
  }

  bool on_object_end(std::size_t, json::error_code&) {
    if (skip_depth_ == depth_) {
      skip_depth_ = 0;
    } else if (nested_ != 0 && InOp() && depth_ == op_depth_ + 1) {
      if (nested_ == kFPeriod && (Cur().sub_present & (kSInterval | kSAnchor)) == 0)
        SetError(Cur(), 400, "invalid_argument", "field 'period' needs 'interval' or 'anchor'");
      if (nested_ == kFRollover && (Cur().sub_present & kSMax) == 0)
        SetError(Cur(), 400, "invalid_argument", "field 'rollover' needs 'max' (0 or null turns rollover off)");
      nested_ = 0;
    }
    --depth_;
    return true;
  }

  bool on_array_begin(json::error_code& ec) {
    ++depth_;
    if (depth_ == 1) {
      if (shape_ == BodyShape::kFrame) {
        out_.is_array = true;
        op_depth_ = 2;
        in_ops_array_ = true;
        return true;
      }
      return Fail(ec, 400, "bad_json", "the body must be a JSON object");
    }
    if (skip_depth_) return true;
    if (shape_ == BodyShape::kBatch && depth_ == 2) {
      if (key_ != "ops")
        return Fail(ec, 400, "invalid_argument", "unknown field '" + ShortName(key_) + "'");
      if (saw_ops_) return Fail(ec, 400, "invalid_argument", "duplicate field 'ops'");
      saw_ops_ = true;
      in_ops_array_ = true;
      return true;
    }
    if (InOp() && depth_ == op_depth_ + 1) {
      TypeError(Cur(), key_, "a scalar", ValKind::kArray);
      skip_depth_ = depth_;
      return true;
    }
    if (InOp() && depth_ == op_depth_ + 2) {   // inside "period" / "rollover"
      TypeError(Cur(), NestedName(), "a scalar", ValKind::kArray);
      skip_depth_ = depth_;
      return true;
    }
    if (in_ops_array_ && depth_ == op_depth_)
      return Fail(ec, 400, "invalid_argument", "each op must be a JSON object, not an array");
    return true;
  }

  bool on_array_end(std::size_t, json::error_code&) {
    if (skip_depth_ == depth_) skip_depth_ = 0;
    if (in_ops_array_ && depth_ == op_depth_ - 1) in_ops_array_ = false;
    --depth_;
    return true;
  }

  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key_part_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    if (key_part_.empty()) {
      key_.assign(s.data(), s.size());
    } else {
      key_part_.append(s.data(), s.size());
      key_.swap(key_part_);
      key_part_.clear();
    }
    return true;
  }

  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    str_.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code& ec) {
    std::string_view v;
    if (str_.empty()) {
      v = std::string_view(s.data(), s.size());
    } else {
      str_.append(s.data(), s.size());
      v = str_;
    }
    bool ok = Scalar(ValKind::kString, v, ec);
    str_.clear();
    return ok;
  }

  bool on_number_part(json::string_view s, json::error_code&) {
    num_.append(s.data(), s.size());
    return true;
  }
  bool Number(json::string_view s, json::error_code& ec) {
    std::string_view v;
    if (num_.empty()) {
      v = std::string_view(s.data(), s.size());
    } else {
      num_.append(s.data(), s.size());
      v = num_;
    }
    bool ok = Scalar(ValKind::kNumber, v, ec);
    num_.clear();
    return ok;
  }
  bool on_int64(int64_t, json::string_view s, json::error_code& ec) { return Number(s, ec); }
  bool on_uint64(uint64_t, json::string_view s, json::error_code& ec) { return Number(s, ec); }
  bool on_double(double, json::string_view s, json::error_code& ec) { return Number(s, ec); }
  bool on_bool(bool, json::error_code& ec) { return Scalar(ValKind::kBool, {}, ec); }
  bool on_null(json::error_code& ec) { return Scalar(ValKind::kNull, {}, ec); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  bool InOp() const { return op_open_ && depth_ >= op_depth_; }
  bool InOpsArray() const { return in_ops_array_; }
  OpRequest& Cur() { return out_.ops.back(); }

  bool Fail(json::error_code& ec, int http, std::string_view code, std::string msg) {
    out_.error = WireError::Make(http, code, std::move(msg));
    ec = make_error_code(boost::system::errc::invalid_argument);
    return false;
  }

  // An object value of an op field: "period" and "rollover" are objects whose members are
  // read by AssignSubField; anything else is not (false).
  bool BeginNested(OpRequest& r) {
    const uint32_t bit = FieldBitOf(key_);
    if (bit != kFPeriod && bit != kFRollover) return false;
    if (r.present & bit) {
      SetError(r, 400, "invalid_argument", "duplicate field '" + key_ + "'");
      skip_depth_ = depth_;
      return true;
    }
    r.present |= bit;
    if (bit == kFRollover) r.rollover = RolloverSpec{};   // "periods" defaults to 1
    nested_ = bit;
    return true;
  }
  std::string NestedName() const { return std::string(FieldName(nested_)) + "." + ShortName(key_); }

  bool BeginOp(json::error_code& ec) {
    if (out_.ops.size() >= max_ops_)
      return Fail(ec, 413, "too_large",
                  "too many ops in one request (at most " + std::to_string(max_ops_) + ")");
    out_.ops.emplace_back();
    op_open_ = true;
    return true;
  }

  bool Scalar(ValKind kind, std::string_view text, json::error_code& ec) {
    if (depth_ == 0) {
      return Fail(ec, 400, "bad_json",
                  shape_ == BodyShape::kFrame ? "a frame must be a JSON object or array"
                                              : "the body must be a JSON object");
    }
    if (skip_depth_) return true;
    if (InOp() && depth_ == op_depth_) {
      AssignField(Cur(), key_, Value{kind, text});
      return true;
    }
    if (InOp() && depth_ == op_depth_ + 1 && nested_ != 0) {
      AssignSubField(Cur(), nested_, key_, Value{kind, text});
      return true;
    }
    if (shape_ == BodyShape::kBatch && depth_ == 1) {
      if (key_ == "ops")
        return Fail(ec, 400, "invalid_argument",
                    "field 'ops' must be an array, not " + std::string(KindName(kind)));
      return Fail(ec, 400, "invalid_argument", "unknown field '" + ShortName(key_) + "'");
    }
    if (in_ops_array_ && depth_ == op_depth_ - 1)
      return Fail(ec, 400, "invalid_argument",
                  "each op must be a JSON object, not " + std::string(KindName(kind)));
    return true;
  }

  BodyShape shape_;
  size_t max_ops_;
  ParsedBody& out_;
  int depth_ = 0;
  int op_depth_ = 1;
  int skip_depth_ = 0;
  bool op_open_ = false;
  bool in_ops_array_ = false;
  bool saw_ops_ = false;
  uint32_t nested_ = 0;   // kFPeriod / kFRollover while inside that object, else 0
  std::string key_, key_part_, str_, num_;
};

}  // namespace

void ParseBody(std::string_view text, BodyShape shape, size_t max_ops, ParsedBody& out,
               bool allow_empty) {
  out.error = {};
  out.is_array = false;
  out.ops.clear();
  bool blank = true;
  for (char c : text)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      blank = false;
      break;
    }
  if (blank) {
    if (allow_empty && shape == BodyShape::kObject) {
      out.ops.emplace_back();
      return;
    }
    out.error = WireError::Make(400, "bad_json", "empty body: a JSON object is required");
    return;
  }
  json::parse_options opt;
  opt.max_depth = 16;
  json::basic_parser<BodyHandler> p(opt, shape, max_ops, out);
  json::error_code ec;
  size_t n = p.write_some(false, text.data(), text.size(), ec);
  if (!out.error.ok()) {
    out.ops.clear();
    return;
  }
  if (ec) {
    out.ops.clear();
    out.error = WireError::Make(400, "bad_json", "malformed JSON: " + ec.message());
    return;
  }
  if (n != text.size()) {
    out.ops.clear();
    out.error = WireError::Make(400, "bad_json", "malformed JSON: extra data after the value");
    return;
  }
  if (shape == BodyShape::kBatch && !p.handler().saw_ops()) {
    out.ops.clear();
    out.error = WireError::Make(400, "invalid_argument", "missing field 'ops'");
  }
}

}  // namespace genledger::server
