#include "net/host_port.h"

#include <gtest/gtest.h>

namespace genledger::net {
namespace {

TEST(HostPort, SplitsHostsAndPorts) {
  std::string host;
  uint16_t port = 1;
  ASSERT_TRUE(SplitHostPort("127.0.0.1:8080", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 8080);
  ASSERT_TRUE(SplitHostPort("[::1]:0", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(SplitHostPort("localhost:65535", &host, &port).ok());
  EXPECT_EQ(port, 65535);
  ASSERT_TRUE(SplitHostPort("example.com", &host, &port, 80).ok());
  EXPECT_EQ(host, "example.com");
  EXPECT_EQ(port, 80);
  ASSERT_TRUE(SplitHostPort("[::1]", &host, &port, 80).ok());
  EXPECT_EQ(host, "::1");
}

TEST(HostPort, RefusesBadShapes) {
  std::string host = "unchanged";
  uint16_t port = 7;
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", ":80", "h:65536", "h:8o", "h:-1", "h:123456",
                          "[::1", "[::1]80", "[]:80"}) {
    EXPECT_EQ(SplitHostPort(bad, &host, &port).code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(host, "unchanged");
  EXPECT_EQ(port, 7);
}

}  // namespace
}  // namespace genledger::net
