// The event's JSON body (docs/events.md). TODO(lead, issue 15): helper A owns the one encoder,
// src/server/events_json.{h,cc}; this is the local stand-in the brief allows until it is on main.
// When merging, make EncodeEventBody call A's encoder (one line) and delete the body in
// event_json.cc, so that webhooks and streams send byte-identical JSON.
#pragma once

#include <string>

#include "webhook/event_source.h"

namespace genledger::webhook {

// "evt_<id>"
std::string EventIdText(uint64_t id);
// {"event":...,"id":"evt_N","workspace":...,["alert":...,]"state":...,"used":...,...}
std::string EncodeEventBody(const LedgerEvent& e);

}  // namespace genledger::webhook
