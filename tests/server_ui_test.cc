// The dashboard's routes (api_ui.cc, docs/dashboard.md) through Api::HandleHttp: the embedded
// files, their headers, the /ui redirect, and that they need no token while /v1 still does.
// The browser test (tests/browser/test_dashboard.py) drives the page itself.

#include <gtest/gtest.h>

#include <string>

#include "api_test_base.h"
#include "server/ui_assets.h"

namespace genledger::server {
namespace {

class UiTest : public ApiTestBase {};

TEST_F(UiTest, EveryShippedFileIsEmbedded) {
  for (const char* name : {"index.html", "app.js", "api.js", "chart.js", "prom.js", "style.css"}) {
    const UiAsset* a = FindUiAsset(name);
    ASSERT_NE(a, nullptr) << name;
    EXPECT_GT(a->size, 0u) << name;
    EXPECT_EQ(a->etag.front(), '"');
    EXPECT_EQ(a->etag.back(), '"');
  }
  EXPECT_EQ(FindUiAsset("nope.js"), nullptr);
  EXPECT_EQ(FindUiAsset("app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(FindUiAsset("style.css")->content_type, "text/css; charset=utf-8");
}

TEST_F(UiTest, DirectoryUrlServesTheIndexWithPageHeaders) {
  HttpReply r = Do("GET", "/ui/?workspace=acme");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("<title>genledger</title>"), std::string::npos);
  EXPECT_TRUE(r.page);
  EXPECT_EQ(r.cache_control, "no-cache");
  EXPECT_EQ(r.etag, FindUiAsset("index.html")->etag);
  EXPECT_FALSE(r.ledger_state);   // no data in it: nothing to wait for
  HttpReply same = Do("GET", "/ui/index.html");
  EXPECT_EQ(same.body, r.body);
}

TEST_F(UiTest, AssetsAreTheirFilesBytes) {
  const UiAsset* a = FindUiAsset("app.js");
  HttpReply r = Do("GET", "/ui/app.js");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, std::string(reinterpret_cast<const char*>(a->data), a->size));
  EXPECT_EQ(r.content_type, "text/javascript; charset=utf-8");
}

TEST_F(UiTest, BareUiRedirectsKeepingTheQuery) {
  HttpReply r = Do("GET", "/ui?workspace=acme");
  EXPECT_EQ(r.status, 308);
  EXPECT_EQ(r.location, "/ui/?workspace=acme");
  EXPECT_EQ(Do("GET", "/ui").location, "/ui/");
}

TEST_F(UiTest, UnknownFileAndOtherMethods) {
  EXPECT_EQ(Do("GET", "/ui/missing.js").status, 404);
  EXPECT_EQ(Do("GET", "/ui/a/b").status, 404);
  HttpReply post = Do("POST", "/ui/app.js", "{}");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.allow, "GET");
}

TEST_F(UiTest, NoTokenForFilesButStillForData) {
  auth_->AddToken("secret-admin", Role::kAdmin);
  EXPECT_EQ(Do("GET", "/ui/").status, 200);
  EXPECT_EQ(Do("GET", "/ui/app.js").status, 200);
  EXPECT_EQ(Do("GET", "/v1/workspaces").status, 401);
}

TEST_F(UiTest, CountedUnderTheirOwnOperation) {
  Do("GET", "/ui/");
  Do("GET", "/ui");
  const std::string text = metrics_->Render(ledger_->Totals());
  EXPECT_NE(text.find("genledger_requests_total{operation=\"ui\",status=\"200\"} 1"), std::string::npos);
  EXPECT_NE(text.find("genledger_requests_total{operation=\"ui\",status=\"308\"} 1"), std::string::npos);
}

}  // namespace
}  // namespace genledger::server
