#include "server/events_json.h"

#include <charconv>

namespace genledger::server {

namespace {

void AppendU64(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, end);
}

void AppendLimit(std::string& out, uint64_t v) {
  if (v == kUnlimited) {
    out += "null";
  } else {
    AppendU64(out, v);
  }
}

}  // namespace

std::string EventIdText(uint64_t id) {
  std::string s = "evt_";
  AppendU64(s, id);
  return s;
}

void AppendEventJson(std::string& out, const LedgerEvent& e) {
  // Workspace ids and alert names are validated ids ([A-Za-z0-9._:@-]): nothing to escape.
  out += "{\"event\":\"";
  out += EventKindName(e.kind);
  out += "\",\"id\":\"evt_";
  AppendU64(out, e.id);
  out += "\",\"workspace\":\"";
  out += e.workspace;
  out += '"';
  if (e.kind == EventKind::kAlert) {
    out += ",\"alert\":\"";
    out += e.alert;
    out += '"';
  }
  if (e.kind != EventKind::kPeriodReset) out += e.fired ? ",\"state\":\"fired\"" : ",\"state\":\"recovered\"";
  out += ",\"used\":";
  AppendU64(out, e.used);
  out += ",\"remaining\":";
  AppendLimit(out, e.remaining);
  out += ",\"limit\":";
  AppendLimit(out, e.limit);
  out += ",\"period\":";
  AppendU64(out, e.period);
  out += ",\"rev\":";
  AppendU64(out, e.rev);
  out += ",\"at_ms\":";
  AppendU64(out, e.at_ms);
  out += '}';
}

}  // namespace genledger::server
