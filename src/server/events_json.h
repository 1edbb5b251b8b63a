// The JSON of a ledger event (docs/events.md, "Alerts"): one encoder for the live streams and the
// webhooks, so every consumer sees the same bytes for the same event.
#pragma once

#include <string>

#include "genledger/ledger.h"

namespace genledger::server {

// Appends {"event":"alert","id":"evt_N","workspace":..,"alert":..,"state":"fired"|"recovered",
// "used":..,"remaining":..,"limit":..,"period":..,"rev":..,"at_ms":..}. "alert" only for kAlert;
// no "state" for period_reset. `remaining` and `limit` are null for an unlimited workspace.
void AppendEventJson(std::string& out, const LedgerEvent& e);

// "evt_<id>", the event's id on the wire (Genledger-Event-Id, "id").
std::string EventIdText(uint64_t id);

}  // namespace genledger::server
