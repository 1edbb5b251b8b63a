// genledger-load --target parsing (src/load/target.cc).
#include "load/target.h"

#include <gtest/gtest.h>

using genledger::load::ParseTarget;
using genledger::load::Target;

TEST(LoadTarget, WebSocketGetsTheDefaultPath) {
  Target t;
  std::string err;
  ASSERT_TRUE(ParseTarget("ws://127.0.0.1:8080", t, err)) << err;
  EXPECT_TRUE(t.ws);
  EXPECT_EQ(t.host, "127.0.0.1");
  EXPECT_EQ(t.port, "8080");
  EXPECT_EQ(t.path, "/v1/ws");
  ASSERT_TRUE(ParseTarget("ws://localhost:9/other", t, err)) << err;
  EXPECT_EQ(t.path, "/other");
}

TEST(LoadTarget, HttpIsABaseUrlAndIpv6IsBracketed) {
  Target t;
  std::string err;
  ASSERT_TRUE(ParseTarget("http://[::1]:8081/", t, err)) << err;
  EXPECT_FALSE(t.ws);
  EXPECT_EQ(t.host, "::1");
  EXPECT_EQ(t.port, "8081");
  ASSERT_TRUE(ParseTarget("http://example", t, err)) << err;
  EXPECT_EQ(t.port, "80");
  EXPECT_FALSE(ParseTarget("http://h:1/v1/charge", t, err));
  EXPECT_NE(err.find("base URL"), std::string::npos) << err;
}

TEST(LoadTarget, BadTargetsAreRefusedWithTheReason) {
  Target t;
  for (const char* bad : {"ftp://h:1", "ws://:80", "ws://h:0", "ws://h:65536", "ws://h:8x",
                          "ws://[::1]8080", "http://[::1"}) {
    std::string err;
    EXPECT_FALSE(ParseTarget(bad, t, err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
}
