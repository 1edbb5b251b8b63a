#include "webhook/event_json.h"

#include "server/events_json.h"

namespace genledger::webhook {

std::string EventIdText(uint64_t id) { return server::EventIdText(id); }

std::string EncodeEventBody(const LedgerEvent& e) {
  std::string out;
  server::AppendEventJson(out, e);
  return out;
}

}  // namespace genledger::webhook
