// Request parsing and response encoding of the wire protocol (src/server/protocol.h).
#include "server/protocol.h"

#include <gtest/gtest.h>

namespace genledger::server {
namespace {

OpRequest One(std::string_view text) {
  ParsedBody pb;
  ParseBody(text, BodyShape::kObject, 1, pb);
  EXPECT_TRUE(pb.error.ok()) << pb.error.code << ": " << pb.error.message;
  EXPECT_EQ(pb.ops.size(), 1u);
  return pb.ops.empty() ? OpRequest{} : pb.ops[0];
}

WireError BodyError(std::string_view text, BodyShape shape = BodyShape::kObject,
                    size_t max_ops = 100) {
  ParsedBody pb;
  ParseBody(text, shape, max_ops, pb);
  EXPECT_FALSE(pb.error.ok()) << text;
  EXPECT_TRUE(pb.ops.empty());
  return pb.error;
}

WireError OpError(std::string_view text) {
  OpRequest r = One(text);
  EXPECT_FALSE(r.error.ok()) << text;
  return r.error;
}

TEST(ServerProtocol, ParsesEveryChargeField) {
  OpRequest r = One(R"({"workspace":"acme","user":"u-1","model":"GPT-4o","quantity":3,)"
                    R"("id":"idem.1","formats":2,"outputs":4,"ttl_ms":5000,"seq":7})");
  EXPECT_TRUE(r.error.ok());
  EXPECT_EQ(r.workspace, "acme");
  EXPECT_EQ(r.user, "u-1");
  EXPECT_EQ(r.model, "GPT-4o");
  EXPECT_EQ(r.quantity, 3u);
  EXPECT_EQ(r.id, "idem.1");
  EXPECT_EQ(r.formats, 2u);
  EXPECT_EQ(r.outputs, 4u);
  EXPECT_EQ(r.ttl_ms, 5000u);
  EXPECT_EQ(r.seq, 7u);
  EXPECT_EQ(r.present, kFWorkspace | kFUser | kFModel | kFQuantity | kFId | kFFormats |
                           kFOutputs | kFTtl | kFSeq);
}

TEST(ServerProtocol, SecondsAreExactFromText) {
  EXPECT_EQ(One(R"({"seconds":3.03})").seconds_milli, 3030u);
  EXPECT_EQ(One(R"({"seconds":3})").seconds_milli, 3000u);
  EXPECT_EQ(One(R"({"seconds":0.5})").seconds_milli, 500u);
  EXPECT_EQ(One(R"({"seconds":0.001})").seconds_milli, 1u);
  EXPECT_EQ(One(R"({"seconds":86400})").seconds_milli, 86'400'000u);
  EXPECT_EQ(One(R"({"seconds":10.100})").seconds_milli, 10'100u);
  for (const char* bad : {R"({"seconds":3.0301})", R"({"seconds":1e1})", R"({"seconds":-1})",
                          R"({"seconds":0})", R"({"seconds":86400.001})",
                          R"({"seconds":1E-3})", R"({"seconds":99999999999999999999999})"}) {
    WireError e = OpError(bad);
    EXPECT_EQ(e.code, "invalid_quantity") << bad;
    EXPECT_EQ(e.http, 400);
  }
  EXPECT_EQ(OpError(R"({"seconds":"3"})").code, "invalid_argument");
}

TEST(ServerProtocol, IntegersOnlyWhereIntegersAreMeant) {
  EXPECT_EQ(One(R"({"quantity":1000000})").quantity, 1'000'000u);
  for (const char* bad : {R"({"quantity":1.5})", R"({"quantity":1.0})", R"({"quantity":1e3})",
                          R"({"quantity":-3})", R"({"quantity":0})", R"({"quantity":-0})",
                          R"({"quantity":18446744073709551616})",
                          R"({"quantity":123456789012345678901234567890})"})
    EXPECT_EQ(OpError(bad).code, "invalid_quantity") << bad;
  EXPECT_EQ(One(R"({"quantity":18446744073709551615})").quantity, UINT64_MAX);
  EXPECT_EQ(OpError(R"({"outputs":0})").code, "invalid_quantity");
  EXPECT_EQ(OpError(R"({"outputs":101})").code, "invalid_quantity");
  EXPECT_EQ(OpError(R"({"formats":1001})").code, "invalid_quantity");
  EXPECT_EQ(OpError(R"({"ttl_ms":0})").code, "invalid_argument");
  EXPECT_EQ(OpError(R"({"ttl_ms":1.5})").code, "invalid_argument");
  EXPECT_EQ(OpError(R"({"seq":-1})").code, "invalid_argument");
  EXPECT_EQ(One(R"({"seq":0})").seq, 0u);
  EXPECT_FALSE(One(R"({"seq":"7"})").has(kFSeq));   // invalid: not echoed
}

TEST(ServerProtocol, LimitRegionAmount) {
  OpRequest r = One(R"({"limit":null,"region":"cn"})");
  EXPECT_EQ(r.limit, kUnlimited);
  EXPECT_TRUE(r.has(kFLimit));
  EXPECT_EQ(r.region, "cn");
  EXPECT_EQ(One(R"({"limit":0})").limit, 0u);
  EXPECT_EQ(One(R"({"limit":1000000000000000})").limit, kMaxLimit);
  EXPECT_EQ(OpError(R"({"limit":1000000000000001})").code, "invalid_argument");
  EXPECT_EQ(OpError(R"({"limit":-1})").code, "invalid_argument");
  EXPECT_EQ(OpError(R"({"limit":"10"})").code, "invalid_argument");
  EXPECT_EQ(OpError(R"({"limit":true})").code, "invalid_argument");
  EXPECT_EQ(One(R"({"amount":5})").amount, 5u);
  EXPECT_EQ(OpError(R"({"amount":0})").code, "invalid_argument");
  EXPECT_EQ(OpError(R"({"amount":1000000000000001})").code, "invalid_argument");
}

TEST(ServerProtocol, WrongTypesUnknownAndDuplicateFields) {
  EXPECT_EQ(OpError(R"({"workspace":1})").code, "invalid_argument");
  EXPECT_EQ(OpError(R"({"workspace":null})").code, "invalid_argument");
  EXPECT_EQ(OpError(R"({"user":["a"]})").code, "invalid_argument");
  EXPECT_EQ(OpError(R"({"model":{"a":1}})").code, "invalid_argument");
  EXPECT_EQ(OpError(R"({"quantity":"3"})").code, "invalid_argument");
  EXPECT_EQ(OpError(R"({"reservation":5})").code, "invalid_argument");
  WireError e = OpError(R"({"workspace":"a","colour":"red"})");
  EXPECT_EQ(e.code, "invalid_argument");
  EXPECT_NE(e.message.find("'colour'"), std::string::npos) << e.message;
  e = OpError(R"({"workspace":"a","workspace":"b"})");
  EXPECT_NE(e.message.find("duplicate"), std::string::npos);
  // A nested value is skipped entirely; the rest still parses.
  OpRequest r = One(R"({"user":{"x":[1,{"y":2}]},"workspace":"w"})");
  EXPECT_EQ(r.error.code, "invalid_argument");
  EXPECT_EQ(r.workspace, "w");
  // A very long unknown name is cut in the message.
  std::string longkey(1000, 'k');
  e = OpError("{\"" + longkey + "\":1}");
  EXPECT_LT(e.message.size(), 200u);
}

TEST(ServerProtocol, MalformedBodies) {
  for (const char* bad : {"", "   ", "{", R"({"workspace":"a")", R"({"workspace":)", "nul",
                          "{'a':1}", R"({"a":1,})", R"({"a":1} x)", R"({"a":1}{})",
                          "[1,2]", "42", R"("str")", "null", R"({"a":01})",
                          "/* c */ {}"}) {
    WireError e = BodyError(bad);
    EXPECT_EQ(e.code, "bad_json") << bad;
    EXPECT_EQ(e.http, 400);
  }
  // Bad UTF-8 in a string and in a key.
  EXPECT_EQ(BodyError("{\"workspace\":\"a\xff\"}").code, "bad_json");
  EXPECT_EQ(BodyError("{\"w\xc3\":1}").code, "bad_json");
  EXPECT_EQ(BodyError("{\"workspace\":\"\xed\xa0\x80\"}").code, "bad_json");  // surrogate
  // Valid UTF-8 and escapes are fine (the ledger then judges the id).
  EXPECT_EQ(One(R"({"workspace":"caf\u00e9"})").workspace, "caf\xc3\xa9");
  // Whitespace around the value is fine.
  EXPECT_EQ(One(" \n{\"quantity\":2}\n ").quantity, 2u);
  // Empty body allowed only where asked.
  ParsedBody pb;
  ParseBody("", BodyShape::kObject, 1, pb, /*allow_empty=*/true);
  EXPECT_TRUE(pb.error.ok());
  EXPECT_EQ(pb.ops.size(), 1u);
}

TEST(ServerProtocol, Batch) {
  ParsedBody pb;
  ParseBody(R"({"ops":[{"op":"charge","quantity":1},{"op":"refund","charge":"ch_5","seq":2}]})",
            BodyShape::kBatch, 10, pb);
  ASSERT_TRUE(pb.error.ok()) << pb.error.message;
  ASSERT_EQ(pb.ops.size(), 2u);
  EXPECT_EQ(pb.ops[0].op, OpKind::kCharge);
  EXPECT_EQ(pb.ops[1].op, OpKind::kRefund);
  EXPECT_TRUE(pb.ops[1].charge_known);
  EXPECT_EQ(pb.ops[1].charge_id, 5u);
  ParseBody(R"({"ops":[]})", BodyShape::kBatch, 10, pb);
  EXPECT_TRUE(pb.error.ok());
  EXPECT_TRUE(pb.ops.empty());
  // A bad op fails alone.
  ParseBody(R"({"ops":[{"op":"nope"},{"op":"charge","x":1},{"op":"quote"}]})", BodyShape::kBatch,
            10, pb);
  ASSERT_TRUE(pb.error.ok());
  ASSERT_EQ(pb.ops.size(), 3u);
  EXPECT_EQ(pb.ops[0].error.code, "invalid_argument");
  EXPECT_EQ(pb.ops[1].error.code, "invalid_argument");
  EXPECT_TRUE(pb.ops[2].error.ok());

  EXPECT_EQ(BodyError(R"({})", BodyShape::kBatch).message, "missing field 'ops'");
  EXPECT_EQ(BodyError(R"({"ops":{}})", BodyShape::kBatch).code, "invalid_argument");
  EXPECT_EQ(BodyError(R"({"ops":3})", BodyShape::kBatch).code, "invalid_argument");
  EXPECT_EQ(BodyError(R"({"ops":[1]})", BodyShape::kBatch).code, "invalid_argument");
  EXPECT_EQ(BodyError(R"({"ops":[[]]})", BodyShape::kBatch).code, "invalid_argument");
  EXPECT_EQ(BodyError(R"({"ops":[],"x":1})", BodyShape::kBatch).code, "invalid_argument");
  EXPECT_EQ(BodyError(R"({"x":[]})", BodyShape::kBatch).code, "invalid_argument");
  EXPECT_EQ(BodyError(R"({"ops":[],"ops":[]})", BodyShape::kBatch).code, "invalid_argument");
  EXPECT_EQ(BodyError(R"([{"op":"charge"}])", BodyShape::kBatch).code, "bad_json");
  WireError e = BodyError(R"({"ops":[{},{},{}]})", BodyShape::kBatch, 2);
  EXPECT_EQ(e.http, 413);
  EXPECT_EQ(e.code, "too_large");
}

TEST(ServerProtocol, Frames) {
  ParsedBody pb;
  ParseBody(R"({"op":"charge","seq":7})", BodyShape::kFrame, 10, pb);
  ASSERT_TRUE(pb.error.ok());
  EXPECT_FALSE(pb.is_array);
  ASSERT_EQ(pb.ops.size(), 1u);
  EXPECT_EQ(pb.ops[0].seq, 7u);
  ParseBody(R"([{"op":"charge","seq":1},{"op":"quote","seq":2}])", BodyShape::kFrame, 10, pb);
  ASSERT_TRUE(pb.error.ok());
  EXPECT_TRUE(pb.is_array);
  ASSERT_EQ(pb.ops.size(), 2u);
  EXPECT_EQ(pb.ops[1].seq, 2u);
  ParseBody("[]", BodyShape::kFrame, 10, pb);
  EXPECT_TRUE(pb.error.ok());
  EXPECT_TRUE(pb.is_array);
  EXPECT_EQ(BodyError("7", BodyShape::kFrame).code, "bad_json");
  EXPECT_EQ(BodyError("[7]", BodyShape::kFrame).code, "invalid_argument");
  EXPECT_EQ(BodyError("[[{}]]", BodyShape::kFrame).code, "invalid_argument");
  EXPECT_EQ(BodyError("[{},{}]", BodyShape::kFrame, 1).code, "too_large");
}

TEST(ServerProtocol, Ids) {
  uint64_t v = 0;
  EXPECT_TRUE(ParsePrefixedId("ch_1", "ch_", v));
  EXPECT_EQ(v, 1u);
  EXPECT_TRUE(ParsePrefixedId("ch_0", "ch_", v));
  EXPECT_TRUE(ParsePrefixedId("rs_18446744073709551615", "rs_", v));
  EXPECT_EQ(v, UINT64_MAX);
  for (const char* bad : {"", "ch_", "ch_01", "ch_-1", "ch_+1", "ch_1 ", " ch_1", "CH_1",
                          "rs_1", "ch_18446744073709551616", "ch_1a", "ch_1.0", "ch"})
    EXPECT_FALSE(ParsePrefixedId(bad, "ch_", v)) << bad;
  EXPECT_EQ(FormatChargeId(42), "ch_42");
  EXPECT_EQ(FormatReservationId(UINT64_MAX), "rs_18446744073709551615");
  OpRequest r = One(R"({"reservation":"rs_x"})");
  EXPECT_TRUE(r.error.ok());
  EXPECT_FALSE(r.reservation_known);
  r = One(R"({"charge":"ch_9"})");
  EXPECT_TRUE(r.charge_known);
  EXPECT_EQ(r.charge_id, 9u);
}

TEST(ServerProtocol, CheckFields) {
  OpRequest r = One(R"({"workspace":"a","ttl_ms":5})");
  WireError e = CheckFields(r, AllowedFields(OpKind::kCharge), kFWorkspace);
  EXPECT_EQ(e.code, "invalid_argument");
  EXPECT_NE(e.message.find("'ttl_ms'"), std::string::npos);
  EXPECT_TRUE(CheckFields(r, AllowedFields(OpKind::kReserve), kFWorkspace).ok());
  e = CheckFields(r, AllowedFields(OpKind::kReserve), kFWorkspace | kFModel);
  EXPECT_EQ(e.message, "missing field 'model'");
}

TEST(ServerProtocol, Encoding) {
  std::string s;
  AppendJsonString(s, "a\"b\\c\n\x01\x7f\xc3\xa9");
  EXPECT_EQ(s, "\"a\\\"b\\\\c\\n\\u0001\\u007f\xc3\xa9\"");
  s.clear();
  AppendLimit(s, kUnlimited);
  s += ",";
  AppendLimit(s, 5);
  EXPECT_EQ(s, "null,5");
  WireError e = WireError::FromStatus(Status(Code::kInsufficientGenerations));
  e.has_cost = true;
  e.cost = 10;
  e.remaining = 3;
  EXPECT_EQ(ErrorBody(e),
            R"({"error":{"code":"insufficient_generations","message":"the workspace has not )"
            R"(enough generations left","cost":10,"remaining":3}})");
  EXPECT_EQ(e.http, 402);
  ChargeResult c;
  c.charge_id = 7;
  c.cost = 3;
  c.remaining = kUnlimited;
  c.user_used = 9;
  c.replayed = true;
  s.clear();
  AppendChargeFields(s, c);
  EXPECT_EQ(s, R"("charge":"ch_7","cost":3,"remaining":null,"user_used":9,"replayed":true)");
  WorkspaceInfo w;
  w.workspace = "acme";
  w.limit = 100;
  w.used = 10;
  w.reserved = 5;
  w.remaining = 85;
  w.period = 3;
  w.region = Region::kCn;
  w.rev = 9;
  s.clear();
  AppendWorkspace(s, w);
  EXPECT_EQ(s, R"({"workspace":"acme","limit":100,"used":10,"reserved":5,"remaining":85,)"
               R"("region":"cn","period":3,"schedule":{"interval":"none","anchor":null},)"
               R"("period_start":null,"period_end":null,"granted_remaining":0,"plan_priority":100,)"
               R"("rollover":null,"overage_mode":"hard","overage":0,"overage_limit":null,"rev":9})");
  // A subscription: the older fields keep their place, the new ones follow.
  w.interval = Interval::kMonth;
  w.anchor_ms = 1000;
  w.period_start_ms = 2000;
  w.period_end_ms = 3000;
  w.granted_remaining = 40;
  w.plan_priority = 7;
  w.rollover = RolloverSpec{50, 2};
  w.overage_mode = OverageMode::kSoft;
  w.overage = 4;
  w.overage_limit = 9;
  w.pending_limit = kUnlimited;
  w.overdrawn = 1;
  s.clear();
  AppendWorkspace(s, w);
  EXPECT_EQ(s, R"({"workspace":"acme","limit":100,"used":10,"reserved":5,"remaining":85,)"
               R"("region":"cn","period":3,"schedule":{"interval":"month","anchor":1000},)"
               R"("period_start":2000,"period_end":3000,"granted_remaining":40,"plan_priority":7,)"
               R"("rollover":{"max":50,"periods":2},"overage_mode":"soft","overage":4,"overage_limit":9,)"
               R"("pending_limit":null,"overdrawn":1,"rev":9})");
  // Overage and shadow mode's verdict in charge, reserve and commit results.
  c.replayed = false;
  c.overage = 2;
  c.would_refuse = Code::kUserLimitExceeded;
  s.clear();
  AppendChargeFields(s, c);
  EXPECT_EQ(s, R"("charge":"ch_7","cost":3,"remaining":null,"user_used":9,"overage":2,)"
               R"("would_refuse":"user_limit_exceeded")");
  ReserveResult rr;
  rr.reservation_id = 5;
  rr.held = 3;
  rr.remaining = 0;
  rr.expires_at_ms = 9;
  rr.would_refuse = Code::kInsufficientGenerations;
  s.clear();
  AppendReserveFields(s, rr);
  EXPECT_EQ(s, R"("reservation":"rs_5","held":3,"remaining":0,"expires_at":9,)"
               R"("would_refuse":"insufficient_generations")");
  CommitResult cr;
  cr.cost = 3;
  cr.charge_id = 8;
  cr.overage = 1;
  s.clear();
  AppendCommitFields(s, cr);
  EXPECT_EQ(s, R"("cost":3,"remaining":0,"charge":"ch_8","overage":1)");
  // Grants: the plan allowance and a grant.
  GrantInfo g;
  g.amount = kUnlimited;
  g.remaining = kUnlimited;
  g.ends_with_period = true;
  s.clear();
  AppendGrant(s, g);
  EXPECT_EQ(s, R"({"grant":"plan","amount":null,"remaining":null,"priority":100,"expires_at":null,)"
               R"("source":"plan","created_at":null,"ends_with_period":true})");
  g = GrantInfo{};
  g.grant = 12;
  g.source = GrantSource::kPromo;
  g.amount = 100;
  g.remaining = 60;
  g.priority = 0;
  g.expires_at_ms = 5000;
  g.created_at_ms = 0;
  g.replayed = true;
  s.clear();
  AppendGrant(s, g);
  EXPECT_EQ(s, R"({"grant":"gr_12","amount":100,"remaining":60,"priority":0,"expires_at":5000,)"
               R"("source":"promo","created_at":0,"ends_with_period":false,"replayed":true})");
  // Quotes: with a usage, and asking only for the maximum (seconds in the <= 3-decimal form).
  ChargeResult q;
  q.cost = 4;
  q.affordable = false;
  q.max_usage = 3030;
  s.clear();
  AppendQuoteFields(s, q, true, true);
  EXPECT_EQ(s, R"("cost":4,"affordable":false,"max_seconds":3.03)");
  s.clear();
  AppendQuoteFields(s, q, false, false);
  EXPECT_EQ(s, R"("max_quantity":3030)");
}

// The subscription fields of PUT /v1/workspaces/{ws} and POST .../grants: "period" and
// "rollover" are objects, times are integers or RFC 3339 strings, every problem names its field.
TEST(ServerProtocol, PlanFields) {
  auto parse = [](std::string_view body) {
    ParsedBody pb;
    ParseBody(body, BodyShape::kObject, 1, pb);
    EXPECT_TRUE(pb.error.ok()) << pb.error.message;
    return pb.ops.empty() ? OpRequest{} : pb.ops[0];
  };
  OpRequest r = parse(R"({"limit":5,"period":{"interval":"month","anchor":"2026-01-31T00:00:00Z"},)"
                      R"("rollover":{"max":100,"periods":3},"plan_priority":0,"overage_mode":"soft",)"
                      R"("overage_limit":null,"limit_change":"now"})");
  ASSERT_TRUE(r.error.ok()) << r.error.message;
  EXPECT_EQ(r.present, kFLimit | kFPeriod | kFRollover | kFPlanPriority | kFOverageMode | kFOverageLimit | kFLimitChange);
  EXPECT_EQ(r.sub_present, kSInterval | kSAnchor | kSMax | kSPeriods);
  EXPECT_EQ(r.interval, Interval::kMonth);
  EXPECT_EQ(r.anchor_ms, 1'769'817'600'000u);
  EXPECT_EQ(r.rollover.max, 100u);
  EXPECT_EQ(r.rollover.periods, 3u);
  EXPECT_EQ(r.overage_mode, OverageMode::kSoft);
  EXPECT_EQ(r.overage_limit, kUnlimited);
  r = parse(R"({"period":{"anchor":0},"rollover":null,"expires_at":1769817600000,"source":"promo","priority":1000})");
  ASSERT_TRUE(r.error.ok()) << r.error.message;
  EXPECT_EQ(r.sub_present, kSAnchor);
  EXPECT_EQ(r.anchor_ms, 0u);
  EXPECT_EQ(r.rollover.max, 0u);
  EXPECT_EQ(r.expires_at_ms, 1'769'817'600'000u);
  EXPECT_EQ(r.source, GrantSource::kPromo);
  EXPECT_EQ(r.priority, 1000u);
  r = parse(R"({"rollover":{"max":7}})");
  EXPECT_EQ(r.rollover.periods, 1u);
  const std::pair<std::string_view, std::string_view> bad[] = {
      {R"({"period":{"interval":"fortnight"}})", "period.interval"},
      {R"({"period":{"interval":"month","anchor":"2026-02-30T00:00:00Z"}})", "period.anchor"},
      {R"({"period":{"anchor":253402300800000}})", "period.anchor"},
      {R"({"period":{"anchor":1.5}})", "period.anchor"},
      {R"({"period":{"interval":"day","every":2}})", "period.every"},
      {R"({"period":{"interval":"day","interval":"day"}})", "period.interval"},
      {R"({"period":{}})", "period"},
      {R"({"period":"month"})", "period"},
      {R"({"period":{"interval":["day"]}})", "period.interval"},
      {R"({"rollover":{"periods":2}})", "rollover"},
      {R"({"rollover":{"max":1,"periods":25}})", "rollover.periods"},
      {R"({"rollover":5})", "rollover"},
      {R"({"plan_priority":1001})", "plan_priority"},
      {R"({"overage_mode":"lenient"})", "overage_mode"},
      {R"({"overage_limit":-1})", "overage_limit"},
      {R"({"limit_change":"later"})", "limit_change"},
      {R"({"expires_at":0})", "expires_at"},
      {R"({"expires_at":"tomorrow"})", "expires_at"},
      {R"({"source":"plan"})", "source"},
      {R"({"priority":-3})", "priority"},
  };
  for (const auto& [body, field] : bad) {
    ParsedBody pb;
    ParseBody(body, BodyShape::kObject, 1, pb);
    ASSERT_TRUE(pb.error.ok()) << body;
    const WireError& e = pb.ops[0].error;
    EXPECT_EQ(e.http, 400) << body;
    EXPECT_NE(e.message.find("'" + std::string(field) + "'"), std::string::npos) << body << ": " << e.message;
  }
  // Gate ops do not take them.
  r = parse(R"({"workspace":"a","user":"u","model":"m","quantity":1,"priority":1})");
  EXPECT_EQ(CheckFields(r, AllowedFields(OpKind::kCharge), 0).message, "unknown field 'priority' for this operation");
}

TEST(ServerProtocol, MutatedInputsNeverCrash) {
  // Random byte edits of valid bodies: the parser must always return a well-formed answer.
  const std::string seeds[] = {
      R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":3,"id":"k","seq":1})",
      R"({"ops":[{"op":"charge","workspace":"a","user":"u","model":"m","seconds":3.03,"outputs":2},{"op":"refund","charge":"ch_1"}]})",
      R"([{"op":"reserve","workspace":"a","user":"u","model":"m","quantity":1,"ttl_ms":5},{"op":"commit","reservation":"rs_12"}])",
      R"({"limit":null,"region":"cn","amount":5})",
      R"({"period":{"interval":"month","anchor":"2026-01-31T00:00:00Z"},"rollover":{"max":5,"periods":2},"expires_at":null})",
  };
  const char alphabet[] = "{}[]\",:0123456789.-+eE \\tnulrfa\xff\xc3\x80";
  uint64_t state = 88172645463325252ull;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  ParsedBody pb;
  int ok = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s = seeds[next() % 4];
    int edits = 1 + int(next() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      size_t pos = next() % s.size();
      switch (next() % 3) {
        case 0: s[pos] = alphabet[next() % (sizeof alphabet - 1)]; break;
        case 1: s.erase(pos, 1 + next() % 3); break;
        default: s.insert(pos, 1, alphabet[next() % (sizeof alphabet - 1)]); break;
      }
    }
    for (BodyShape shape : {BodyShape::kObject, BodyShape::kBatch, BodyShape::kFrame}) {
      ParseBody(s, shape, 10, pb);
      if (pb.error.ok()) {
        ++ok;
        for (const auto& op : pb.ops)
          if (!op.error.ok()) {
            ASSERT_FALSE(op.error.code.empty());
            ASSERT_GE(op.error.http, 400);
          }
        if (shape == BodyShape::kObject) ASSERT_EQ(pb.ops.size(), 1u) << s;
      } else {
        ASSERT_FALSE(pb.error.code.empty()) << s;
        ASSERT_TRUE(pb.ops.empty());
      }
    }
  }
  EXPECT_GT(ok, 0);
}

// The HTTP status of each error code is part of the public API (docs/api.md, "Errors").
TEST(Protocol, HttpStatusesArePinned) {
  EXPECT_EQ(HttpStatus(Code::kInsufficientGenerations), 402);
  EXPECT_EQ(HttpStatus(Code::kUserLimitExceeded), 402);
  EXPECT_EQ(HttpStatus(Code::kModelNotAvailableInRegion), 403);
  EXPECT_EQ(HttpStatus(Code::kUnknownWorkspace), 404);
  EXPECT_EQ(HttpStatus(Code::kIdempotencyConflict), 409);
  EXPECT_EQ(HttpStatus(Code::kReservationSettled), 409);
  EXPECT_EQ(HttpStatus(Code::kAlreadyRefunded), 409);
  EXPECT_EQ(HttpStatus(Code::kUnavailable), 503);
  EXPECT_EQ(HttpStatus(Code::kUnknownModel), 400);
  EXPECT_EQ(HttpStatus(Code::kOk), 200);
  EXPECT_EQ(HttpStatus(Code::kCapacityExhausted), 429);
  EXPECT_EQ(HttpStatus(Code::kInternal), 500);
}

}  // namespace
}  // namespace genledger::server
