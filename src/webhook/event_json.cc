#include "webhook/event_json.h"

#include <boost/json.hpp>

namespace genledger::webhook {

std::string EventIdText(uint64_t id) { return "evt_" + std::to_string(id); }

std::string EncodeEventBody(const LedgerEvent& e) {
  boost::json::object o;
  switch (e.kind) {
    case EventKind::kAlert: o["event"] = "alert"; break;
    case EventKind::kDepleted: o["event"] = "depleted"; break;
    case EventKind::kPeriodReset: o["event"] = "period_reset"; break;
  }
  o["id"] = EventIdText(e.id);
  o["workspace"] = e.workspace;
  if (e.kind == EventKind::kAlert) o["alert"] = e.alert;
  o["state"] = e.fired ? "fired" : "recovered";
  o["used"] = e.used;
  o["remaining"] = e.remaining;
  o["limit"] = e.limit;
  o["period"] = e.period;
  o["rev"] = e.rev;
  o["at_ms"] = e.at_ms;
  return boost::json::serialize(o);
}

}  // namespace genledger::webhook
