// Wire-format encoding (protocol.h): results and errors written as JSON by hand.

#include "server/protocol.h"

#include <charconv>
#include <cstring>

#include "genledger/catalog.h"
#include "util/utf8.h"

namespace genledger {
namespace pricing_internal {
// "0.33" for 330: the shortest exact decimal of thousandths, as the catalog writes rates
// (src/pricing/cost.cc; catalog.cc declares it the same way). For "max_seconds".
std::string FormatMilli(uint64_t milli);
}  // namespace pricing_internal
}  // namespace genledger

namespace genledger::server {

void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

void AppendU64(std::string& out, uint64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, p);
}

void AppendLimit(std::string& out, uint64_t v) {
  if (v == kUnlimited)
    out += "null";
  else
    AppendU64(out, v);
}

void AppendErrorMember(std::string& out, const WireError& e) {
  out += "\"error\":{\"code\":";
  AppendJsonString(out, e.code);
  out += ",\"message\":";
  AppendJsonString(out, e.message);
  if (e.has_cost) {
    out += ",\"cost\":";
    AppendU64(out, e.cost);
    out += ",\"remaining\":";
    AppendLimit(out, e.remaining);
  }
  out.push_back('}');
}

std::string ErrorBody(const WireError& e) {
  std::string out = "{";
  AppendErrorMember(out, e);
  out += "}";
  return out;
}

namespace {

// `,"overage":n` when a soft/shadow charge went beyond what was left, and `,"would_refuse":"code"`
// when shadow mode let through what hard mode would have refused.
void AppendOverage(std::string& out, uint64_t overage, Code would_refuse) {
  if (overage != 0) {
    out += ",\"overage\":";
    AppendU64(out, overage);
  }
  if (would_refuse != Code::kOk) {
    out += ",\"would_refuse\":";
    AppendJsonString(out, CodeName(would_refuse));
  }
}

// `,"rev":N` for a change's result (docs/events.md, "Revisions"); nothing for 0, which only a
// result that changed nothing has (a listing's grant).
void AppendRev(std::string& out, uint64_t rev) {
  if (rev == 0) return;
  out += ",\"rev\":";
  AppendU64(out, rev);
}

// A time in ms since the epoch, or null for `none`.
void AppendTime(std::string& out, uint64_t ms, uint64_t none) {
  if (ms == none)
    out += "null";
  else
    AppendU64(out, ms);
}

}  // namespace

void AppendChargeFields(std::string& out, const ChargeResult& r) {
  out += "\"charge\":\"ch_";
  AppendU64(out, r.charge_id);
  out += "\",\"cost\":";
  AppendU64(out, r.cost);
  out += ",\"remaining\":";
  AppendLimit(out, r.remaining);
  out += ",\"user_used\":";
  AppendU64(out, r.user_used);
  AppendOverage(out, r.overage, r.would_refuse);
  AppendRev(out, r.rev);
  if (r.replayed) out += ",\"replayed\":true";
}

void AppendQuoteFields(std::string& out, const ChargeResult& r, bool with_cost, bool per_second) {
  if (with_cost) {
    out += "\"cost\":";
    AppendU64(out, r.cost);
    out += r.affordable ? ",\"affordable\":true," : ",\"affordable\":false,";
  }
  if (per_second) {
    out += "\"max_seconds\":";
    out += pricing_internal::FormatMilli(r.max_usage);
  } else {
    out += "\"max_quantity\":";
    AppendU64(out, r.max_usage);
  }
}

void AppendReserveFields(std::string& out, const ReserveResult& r) {
  out += "\"reservation\":\"rs_";
  AppendU64(out, r.reservation_id);
  out += "\",\"held\":";
  AppendU64(out, r.held);
  out += ",\"remaining\":";
  AppendLimit(out, r.remaining);
  out += ",\"expires_at\":";
  AppendU64(out, r.expires_at_ms);
  AppendOverage(out, 0, r.would_refuse);
  AppendRev(out, r.rev);
  if (r.replayed) out += ",\"replayed\":true";
}

void AppendCommitFields(std::string& out, const CommitResult& r) {
  out += "\"cost\":";
  AppendU64(out, r.cost);
  out += ",\"remaining\":";
  AppendLimit(out, r.remaining);
  out += ",\"charge\":\"ch_";
  AppendU64(out, r.charge_id);
  out += "\"";
  AppendOverage(out, r.overage, Code::kOk);
  AppendRev(out, r.rev);
}

void AppendReleaseFields(std::string& out, const ReleaseResult& r) {
  out += "\"released\":";
  AppendU64(out, r.released);
  out += ",\"remaining\":";
  AppendLimit(out, r.remaining);
  AppendRev(out, r.rev);
}

void AppendRefundFields(std::string& out, const RefundResult& r) {
  out += "\"refunded\":";
  AppendU64(out, r.refunded);
  out += ",\"remaining\":";
  AppendLimit(out, r.remaining);
  AppendRev(out, r.rev);
}

void AppendWorkspace(std::string& out, const WorkspaceInfo& w) {
  out += "{\"workspace\":";
  AppendJsonString(out, w.workspace);
  out += ",\"limit\":";
  AppendLimit(out, w.limit);
  out += ",\"used\":";
  AppendU64(out, w.used);
  out += ",\"reserved\":";
  AppendU64(out, w.reserved);
  out += ",\"remaining\":";
  AppendLimit(out, w.limit == kUnlimited ? kUnlimited : w.remaining);
  out += ",\"region\":";
  AppendJsonString(out, RegionName(w.region));
  out += ",\"period\":";
  AppendU64(out, w.period);
  // Subscriptions (issue 14): appended after the older fields, which keep their order.
  // "period" stays the period count, so the schedule is "schedule" (docs/api.md).
  const bool scheduled = w.interval != Interval::kNone;
  out += ",\"schedule\":{\"interval\":";
  AppendJsonString(out, IntervalName(w.interval));
  out += ",\"anchor\":";
  if (scheduled)
    AppendU64(out, w.anchor_ms);
  else
    out += "null";
  out += "},\"period_start\":";
  if (scheduled)
    AppendU64(out, w.period_start_ms);
  else
    out += "null";
  out += ",\"period_end\":";
  AppendTime(out, scheduled ? w.period_end_ms : UINT64_MAX, UINT64_MAX);
  out += ",\"granted_remaining\":";
  AppendU64(out, w.granted_remaining);
  out += ",\"plan_priority\":";
  AppendU64(out, w.plan_priority);
  out += ",\"rollover\":";
  if (w.rollover.max == 0) {
    out += "null";
  } else {
    out += "{\"max\":";
    AppendU64(out, w.rollover.max);
    out += ",\"periods\":";
    AppendU64(out, w.rollover.periods);
    out += "}";
  }
  out += ",\"overage_mode\":";
  AppendJsonString(out, OverageModeName(w.overage_mode));
  out += ",\"overage\":";
  AppendU64(out, w.overage);
  out += ",\"overage_limit\":";
  AppendLimit(out, w.overage_limit);
  if (w.pending_limit) {
    out += ",\"pending_limit\":";
    AppendLimit(out, *w.pending_limit);
  }
  if (w.overdrawn != 0) {
    out += ",\"overdrawn\":";
    AppendU64(out, w.overdrawn);
  }
  out += ",\"rev\":";
  AppendU64(out, w.rev);
  out += "}";
}

void AppendGrant(std::string& out, const GrantInfo& g) {
  out += "{\"grant\":";
  if (g.grant == 0) {
    out += "\"plan\"";
  } else {
    out += "\"gr_";
    AppendU64(out, g.grant);
    out += "\"";
  }
  out += ",\"amount\":";
  AppendLimit(out, g.amount);
  out += ",\"remaining\":";
  AppendLimit(out, g.remaining);
  out += ",\"priority\":";
  AppendU64(out, g.priority);
  out += ",\"expires_at\":";
  AppendTime(out, g.expires_at_ms, 0);
  out += ",\"source\":";
  AppendJsonString(out, GrantSourceName(g.source));
  out += ",\"created_at\":";
  // The plan's "created_at" is its period's start: none without a schedule.
  AppendTime(out, g.created_at_ms, g.grant == 0 ? 0 : UINT64_MAX);
  out += g.ends_with_period ? ",\"ends_with_period\":true" : ",\"ends_with_period\":false";
  AppendRev(out, g.rev);
  if (g.replayed) out += ",\"replayed\":true";
  out += "}";
}

void AppendUsers(std::string& out, const UserPage& page) {
  out += "{\"users\":[";
  bool first = true;
  for (const auto& u : page.users) {
    if (!first) out.push_back(',');
    first = false;
    out += "{\"user\":";
    AppendJsonString(out, u.user);
    out += ",\"used\":";
    AppendU64(out, u.used);
    out += ",\"reserved\":";
    AppendU64(out, u.reserved);
    out += ",\"limit\":";
    AppendLimit(out, u.limit);
    out += "}";
  }
  out += "],\"next_cursor\":";
  if (page.next_cursor.empty()) {
    out += "null";
  } else {
    AppendJsonString(out, page.next_cursor);
  }
  out += "}";
}

}  // namespace genledger::server
