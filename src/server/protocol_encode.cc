// Wire-format encoding (protocol.h): results and errors written as JSON by hand.

#include "server/protocol.h"

#include <charconv>
#include <cstring>

#include "genledger/catalog.h"
#include "util/utf8.h"

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

void AppendChargeFields(std::string& out, const ChargeResult& r) {
  out += "\"charge\":\"ch_";
  AppendU64(out, r.charge_id);
  out += "\",\"cost\":";
  AppendU64(out, r.cost);
  out += ",\"remaining\":";
  AppendLimit(out, r.remaining);
  out += ",\"user_used\":";
  AppendU64(out, r.user_used);
  if (r.replayed) out += ",\"replayed\":true";
}

void AppendQuoteFields(std::string& out, const ChargeResult& r) {
  out += "\"cost\":";
  AppendU64(out, r.cost);
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
}

void AppendReleaseFields(std::string& out, const ReleaseResult& r) {
  out += "\"released\":";
  AppendU64(out, r.released);
  out += ",\"remaining\":";
  AppendLimit(out, r.remaining);
}

void AppendRefundFields(std::string& out, const RefundResult& r) {
  out += "\"refunded\":";
  AppendU64(out, r.refunded);
  out += ",\"remaining\":";
  AppendLimit(out, r.remaining);
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
