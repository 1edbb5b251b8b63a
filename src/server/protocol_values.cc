// Request body parsing, the typing half (protocol_values.h): each field of an op checked and
// converted as the streaming parser (protocol_parse.cc) reads it, every problem recorded on the op
// with a message naming the field.

#include "server/protocol_values.h"

#include "genledger/catalog.h"
#include "genledger/period.h"
#include "util/utf8.h"

namespace genledger::server::body {

std::string ShortName(std::string_view s) { return util::Utf8Shorten(s, 64); }

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

void SetError(OpRequest& r, int http, std::string_view code, std::string msg) {
  if (r.error.ok()) r.error = WireError::Make(http, code, std::move(msg));
}

void TypeError(OpRequest& r, std::string_view field, std::string_view want, ValKind got) {
  SetError(r, 400, "invalid_argument",
           "field '" + std::string(field) + "' must be " + std::string(want) + ", not " +
               std::string(KindName(got)));
}

namespace {

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

}  // namespace

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


}  // namespace genledger::server::body
