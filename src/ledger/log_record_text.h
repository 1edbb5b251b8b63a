// Human-readable and JSON renderings of WAL records, for genledger-inspect.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "genledger/status.h"

namespace genledger::ledger {

// Decodes a record payload of `type` field by field (docs/wal-records.md) into a JSON object
// {"type": "...", "shard": .., "record_no": .., <fields>}. kCorruption if the payload is too
// short, too long, or the type is unknown. Pure; thread-safe.
Result<boost::json::object> DescribeRecord(uint8_t type, std::string_view payload);

// One line: `charge shard=3 record_no=17 ws=2 user=alice(new) cost=3 ...`.
std::string RecordToText(const boost::json::object& record);

}  // namespace genledger::ledger
