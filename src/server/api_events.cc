// Alerts over HTTP (docs/api.md, "Alerts"; docs/events.md, "Alerts"):
// PUT /v1/workspaces/{ws}/alerts (admin) replaces a workspace's alerts,
// GET /v1/workspaces/{ws}/alerts (read) lists them with their state this period.
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "server/api.h"
#include "server/api_internal.h"

namespace genledger::server {

namespace {

// {"workspace":"acme","alerts":[{"name":..,"when":..,"at":..,"state":"armed"|"fired"},...]}
void ReplyAlerts(std::string_view workspace, const Result<std::vector<AlertInfo>>& alerts, HttpReply& out) {
  if (!alerts.ok()) return SetError(out, WireError::FromStatus(alerts.status()));
  out.status = 200;
  // Workspace ids and alert names are validated ids: nothing to escape.
  out.body = "{\"workspace\":\"";
  out.body += workspace;
  out.body += "\",\"alerts\":[";
  bool first = true;
  for (const AlertInfo& a : *alerts) {
    if (!first) out.body.push_back(',');
    first = false;
    out.body += "{\"name\":\"";
    out.body += a.name;
    out.body += "\",\"when\":\"";
    out.body += AlertWhenName(a.when);
    out.body += "\",\"at\":";
    out.body += std::to_string(a.at);
    out.body += a.fired ? ",\"state\":\"fired\"}" : ",\"state\":\"armed\"}";
  }
  out.body += "]}";
}

// The body of PUT .../alerts: {"alerts":[{"name","when","at"},...]}, nothing else. An empty
// list removes every alert. The error names the first problem (WireError 400).
WireError ParseAlertsBody(std::string_view body, std::vector<AlertSpec>& alerts) {
  auto bad = [](std::string msg) { return WireError::Make(400, "invalid_argument", std::move(msg)); };
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec);
  if (ec) return WireError::Make(400, "bad_json", "malformed JSON: " + ec.message());
  const boost::json::object* o = v.if_object();
  if (o == nullptr) return bad("the body must be a JSON object {\"alerts\":[...]}");
  for (const auto& kv : *o) {
    if (kv.key() != "alerts") return bad("unknown field '" + std::string(kv.key()) + "' (the body has only 'alerts')");
  }
  const boost::json::value* list = o->if_contains("alerts");
  if (list == nullptr || !list->is_array()) return bad("field 'alerts' must be an array");
  const boost::json::array& arr = list->as_array();
  if (arr.size() > kMaxAlertsPerWorkspace) {
    return bad("at most " + std::to_string(kMaxAlertsPerWorkspace) + " alerts per workspace");
  }
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string where = "alerts[" + std::to_string(i) + "]";
    const boost::json::object* a = arr[i].if_object();
    if (a == nullptr) return bad(where + " must be an object {\"name\",\"when\",\"at\"}");
    AlertSpec spec;
    bool has_name = false, has_when = false, has_at = false;
    for (const auto& kv : *a) {
      if (kv.key() == "name") {
        if (!kv.value().is_string()) return bad(where + ".name must be a string");
        spec.name = std::string(kv.value().as_string());
        has_name = true;
      } else if (kv.key() == "when") {
        if (!kv.value().is_string()) return bad(where + ".when must be \"used_percent\" or \"remaining\"");
        Result<AlertWhen> w = ParseAlertWhen(kv.value().as_string());
        if (!w.ok()) return bad(where + ".when must be \"used_percent\" or \"remaining\"");
        spec.when = *w;
        has_when = true;
      } else if (kv.key() == "at") {
        if (kv.value().is_uint64()) {
          spec.at = kv.value().as_uint64();
        } else if (kv.value().is_int64() && kv.value().as_int64() >= 0) {
          spec.at = uint64_t(kv.value().as_int64());
        } else {
          return bad(where + ".at must be a non-negative integer");
        }
        has_at = true;
      } else {
        return bad("unknown field '" + std::string(kv.key()) + "' in " + where);
      }
    }
    if (!has_name || !has_when || !has_at) return bad(where + " needs 'name', 'when' and 'at'");
    alerts.push_back(std::move(spec));
  }
  if (Status st = ValidateAlerts(alerts); !st.ok()) return bad(std::string(st.message()));
  return {};
}

}  // namespace

void Api::HandleGetAlerts(const Call& c, HttpReply& out) {
  Result<std::vector<AlertInfo>> alerts = ledger_->GetAlerts(c.seg[2]);
  out.ledger_state = true;
  ReplyAlerts(c.seg[2], alerts, out);
}

void Api::HandlePutAlerts(const Call& c, HttpReply& out) {
  std::vector<AlertSpec> alerts;
  if (WireError e = ParseAlertsBody(c.body, alerts); !e.ok()) return SetError(out, e);
  Result<std::vector<AlertInfo>> set = ledger_->SetAlerts(c.seg[2], alerts);
  out.ledger_state = true;   // answered once the type-22 record is durable
  ReplyAlerts(c.seg[2], set, out);
}

}  // namespace genledger::server
