// Private to the body parser (protocol_parse.cc, protocol_values.cc): typing one field of an op as
// the streaming parser reads it. Each function records the first problem on the op (OpRequest::
// error) with a message naming the field, and never fails otherwise.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "server/protocol.h"

namespace genledger::server::body {

enum class ValKind : uint8_t { kString, kNumber, kBool, kNull, kObject, kArray };
// "a string", "a number", ... for messages.
std::string_view KindName(ValKind k);

// A scalar as the parser saw it.
struct Value {
  ValKind kind;
  std::string_view text;   // string contents or number text
};

// A field name fit for an error message: at most 64 bytes, cut on a UTF-8 boundary.
std::string ShortName(std::string_view s);

// Records an error on the op unless it has one already.
void SetError(OpRequest& r, int http, std::string_view code, std::string msg);
// "field 'F' must be WANT, not GOT".
void TypeError(OpRequest& r, std::string_view field, std::string_view want, ValKind got);

// Field `key` of an op: unknown and duplicate fields are errors; the value is typed and
// range-checked into the op.
void AssignField(OpRequest& r, std::string_view key, const Value& v);
// Member `key` of the object field `parent` (kFPeriod or kFRollover), named "parent.key".
void AssignSubField(OpRequest& r, uint32_t parent, std::string_view key, const Value& v);

}  // namespace genledger::server::body
