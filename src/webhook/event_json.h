// The event's JSON body and id text for webhook requests: the one encoder of events
// (src/server/events_json.{h,cc}, also used by the live streams), so that webhooks and streams send
// byte-identical JSON.
#pragma once

#include <string>

#include "genledger/ledger.h"

namespace genledger::webhook {

// "evt_<id>"
std::string EventIdText(uint64_t id);
// {"event":...,"id":"evt_N","workspace":...,["alert":...,]"state":...,"used":...,...}
std::string EncodeEventBody(const LedgerEvent& e);

}  // namespace genledger::webhook
