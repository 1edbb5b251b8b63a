// HMAC-SHA256 and the Genledger-Signature header against values computed independently by the
// openssl CLI (commands next to each value), and live against the CLI through popen.
#include "webhook/signature.h"

#include <gtest/gtest.h>
#include <stdio.h>

#include <string>

#include "webhook/config.h"

namespace genledger::webhook {
namespace {

TEST(WebhookSignature, Rfc4231TestCase2) {
  // printf '%s' 'what do ya want for nothing?' | openssl dgst -sha256 -hmac Jefe
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(WebhookSignature, HeaderSignsTimestampDotBody) {
  // printf '%s' '1700000000.{"event":"depleted","id":"evt_257"}' |
  //   openssl dgst -sha256 -hmac 'whsec_test_0123456789abcdef'
  EXPECT_EQ(SignatureHeader("whsec_test_0123456789abcdef", 1700000000, R"({"event":"depleted","id":"evt_257"})"),
            "t=1700000000,v1=ced57d5a826bfdc5fb8c5a290d611a61e8517586a48ec5fcaf80900ad2c3d97a");
  // A different timestamp signs a different text.
  EXPECT_NE(SignatureHeader("whsec_test_0123456789abcdef", 1700000001, R"({"event":"depleted","id":"evt_257"})")
                .substr(16),
            "ced57d5a826bfdc5fb8c5a290d611a61e8517586a48ec5fcaf80900ad2c3d97a");
}

// The openssl CLI on a body with quotes, UTF-8 and 2 KiB of text: independent of our code path.
TEST(WebhookSignature, MatchesOpensslCli) {
  std::string body = R"({"event":"alert","workspace":"acme \u00e9","alert":"80pct"})";
  for (int i = 0; i < 64; ++i) body += "0123456789abcdef0123456789abcdef";
  const std::string secret = "s3cr3t-with-dash_and.dot0123";
  const std::string path = ::testing::TempDir() + "webhook_sig_body.txt";
  FILE* f = fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  const std::string text = "1712345678." + body;
  fwrite(text.data(), 1, text.size(), f);
  fclose(f);
  const std::string cmd = "openssl dgst -sha256 -hmac '" + secret + "' < '" + path + "'";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[256] = {};
  const size_t n = fread(buf, 1, sizeof buf - 1, p);
  ASSERT_EQ(pclose(p), 0) << "openssl CLI missing? (tools/setup.sh installs it)";
  std::string out(buf, n);
  const size_t eq = out.rfind("= ");
  ASSERT_NE(eq, std::string::npos) << out;
  const std::string cli_hex = out.substr(eq + 2, 64);
  EXPECT_EQ(SignatureHeader(secret, 1712345678, body), "t=1712345678,v1=" + cli_hex);
  remove(path.c_str());
}

TEST(WebhookConfig, ParseUrl) {
  auto u = ParseUrl("https://hooks.example.com/genledger?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "hooks.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/genledger?x=1");
  u = ParseUrl("http://[::1]:8080");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->target, "/");
  EXPECT_FALSE(ParseUrl("ftp://x/").ok());
  EXPECT_FALSE(ParseUrl("https://user:pw@x/").ok());
  EXPECT_FALSE(ParseUrl("https://x/a#frag").ok());
  EXPECT_FALSE(ParseUrl("https://x:0/").ok());
  EXPECT_FALSE(ParseUrl("https:///path").ok());
  EXPECT_FALSE(ParseUrl("https://x/a b").ok());
}

TEST(WebhookConfig, ValidateLimits) {
  WebhookConfig c;
  c.number = 1;
  c.url = "https://x.example/h";
  c.secret = std::string(16, 'k');
  EXPECT_TRUE(Validate(c).ok());
  c.secret = std::string(15, 'k');
  EXPECT_EQ(Validate(c).code(), Code::kInvalidArgument);
  c.secret = std::string(16, 'k');
  c.events = 0;
  EXPECT_FALSE(Validate(c).ok());
  c.events = 8;
  EXPECT_FALSE(Validate(c).ok());
  c.events = kEventDepleted;
  c.workspaces = std::vector<std::string>{};
  EXPECT_FALSE(Validate(c).ok());
  c.workspaces = std::vector<std::string>{"acme"};
  EXPECT_TRUE(Validate(c).ok());
  c.url = "https://x.example/" + std::string(kMaxUrlBytes, 'a');
  EXPECT_FALSE(Validate(c).ok());

  LedgerEvent e;
  e.kind = EventKind::kDepleted;
  e.workspace = "acme";
  c.url = "https://x.example/h";
  EXPECT_TRUE(c.Wants(e));
  e.workspace = "other";
  EXPECT_FALSE(c.Wants(e));
  e.workspace = "acme";
  e.kind = EventKind::kAlert;
  EXPECT_FALSE(c.Wants(e));
}

}  // namespace
}  // namespace genledger::webhook
