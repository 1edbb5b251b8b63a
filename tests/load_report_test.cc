// genledger-load's report (src/load/report.cc): the --json line other tools parse.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include <boost/json/parse.hpp>

#include "load/load.h"

using namespace genledger::load;

namespace {

LoadReport SampleReport() {
  LoadReport r;
  r.options.target = "ws://h:1/p\"q\\r\x01";   // escaped by Boost.JSON
  r.options.connections = 4;
  r.options.batch = 100;
  r.ops = 3;
  r.ops_per_sec = 199296.14;
  r.elapsed_s = 1.5;
  r.acknowledged_debits = -2;
  r.errors["connection_lost"] = 2;
  r.errors["a\"b"] = 1;
  r.all.Record(10);
  r.by_kind[kOpCommit].Record(10);
  r.verification_ran = true;
  r.verified = false;
  r.usage_error = true;
  r.error = "line1\nline2";
  r.exit_code = 2;
  return r;
}

}  // namespace

TEST(LoadReport, JsonLineIsValidJsonWithEscapedStrings) {
  const LoadReport r = SampleReport();
  const std::string j = ReportJson(r);
  EXPECT_EQ(j.find('\n'), std::string::npos) << "one line";
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(j, ec);
  ASSERT_FALSE(ec) << j;
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("target").as_string(), r.options.target);
  EXPECT_EQ(o.at("error").as_string(), "line1\nline2");
  EXPECT_EQ(o.at("errors_by_code").as_object().at("a\"b").as_int64(), 1);
  EXPECT_EQ(o.at("acknowledged_debits").as_int64(), -2);
  EXPECT_EQ(o.at("verified").as_bool(), false);
  EXPECT_EQ(o.at("by_op").as_object().size(), 1u);
  EXPECT_TRUE(o.at("by_op").as_object().contains(LoadOpKindName(kOpCommit)));
}

TEST(LoadReport, JsonNumbersAreFixedPointAndKeysKeepTheirOrder) {
  const std::string j = ReportJson(SampleReport());
  EXPECT_EQ(j.rfind("{\"ops\":3,\"ops_per_sec\":199296.1,\"errors\":", 0), 0u) << j;
  EXPECT_NE(j.find("\"elapsed_s\":1.500,"), std::string::npos) << j;
  EXPECT_EQ(j.find('E'), std::string::npos) << "no exponent in " << j;
  EXPECT_NE(j.find(",\"exit_code\":2}"), std::string::npos) << j;
}

TEST(LoadReport, TextSummaryEndsWithTheJsonLine) {
  std::ostringstream out;
  PrintReport(SampleReport(), out, /*json=*/true);
  const std::string s = out.str();
  EXPECT_NE(s.find("errors by code:"), std::string::npos) << s;
  EXPECT_EQ(s.substr(s.rfind('\n', s.size() - 2) + 1), ReportJson(SampleReport()) + "\n");
}
