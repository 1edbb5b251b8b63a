// Fuzz target: the JSON op parser of the HTTP API and WebSocket frames (src/server/protocol.h):
// ParseBody in each shape, CheckFields, the id parser and the error/string encoders.
// Input: [mode u8][body]: shape = mode % 3 (object, batch, frame), allow_empty = mode & 4,
// max_ops = 1 + (mode >> 3).
// Properties checked besides "no crash": every error body and encoded string is valid JSON
// (Boost.JSON rejects invalid UTF-8), strings round-trip through AppendJsonString, and a parsed
// ch_/rs_ id formats back to the same text.
#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "server/protocol.h"

using namespace genledger;
using namespace genledger::server;

namespace {

void CheckJson(const std::string& text, const char* what) {
  boost::system::error_code ec;
  (void)boost::json::parse(text, ec);
  if (ec) fuzz::Fail(what, "is not valid JSON: " + text.substr(0, 200));
}

void CheckError(const WireError& e) {
  if (!e.ok()) CheckJson(ErrorBody(e), "error body");
}

void CheckStringRoundTrip(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(out, ec);
  if (ec || !v.is_string() || std::string_view(v.get_string()) != s) {
    fuzz::Fail("AppendJsonString does not round-trip:", out.substr(0, 200));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ByteReader in(data, size);
  const uint8_t mode = in.U8();
  const std::string_view body = in.Rest();
  const BodyShape shape = mode % 3 == 0 ? BodyShape::kObject
                          : mode % 3 == 1 ? BodyShape::kBatch
                                          : BodyShape::kFrame;
  static ParsedBody parsed;  // reused, as the server reuses its per-connection buffer
  ParseBody(body, shape, 1 + (mode >> 3), parsed, (mode & 4) != 0);
  CheckError(parsed.error);
  for (const OpRequest& op : parsed.ops) {
    CheckError(op.error);
    if (op.error.ok()) CheckError(CheckFields(op, AllowedFields(op.op), 0));
    for (const std::string* s : {&op.workspace, &op.user, &op.model, &op.id, &op.region}) {
      CheckStringRoundTrip(*s);
    }
  }
  uint64_t id = 0;
  if (ParsePrefixedId(body, "ch_", id) && FormatChargeId(id) != body) fuzz::Fail("ch_ id round-trip");
  if (ParsePrefixedId(body, "rs_", id) && FormatReservationId(id) != body) fuzz::Fail("rs_ id round-trip");
  return 0;
}
