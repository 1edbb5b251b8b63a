// Ledger::ListWorkspaces: pages by id across every shard, prefixes, cursors, a visibility filter.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "genledger/ledger.h"

namespace genledger {
namespace {

class ListWorkspacesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger_ = std::make_unique<Ledger>(Catalog::Default());
    for (int i = 0; i < 300; ++i) {
      const std::string id = (i % 3 == 0 ? "team-" : "user-") + std::to_string(i);
      ASSERT_TRUE(ledger_->UpsertWorkspace(id, uint64_t(i + 1), Region::kGlobal).ok());
      ids_.insert(id);
    }
  }
  // Every id the pages of `limit` list, in the order listed.
  std::vector<std::string> All(std::string_view prefix, size_t limit) {
    std::vector<std::string> out;
    std::string cursor;
    for (int pages = 0; pages < 1000; ++pages) {
      Result<WorkspacePage> page = ledger_->ListWorkspaces(prefix, limit, cursor);
      EXPECT_TRUE(page.ok()) << page.status().ToString();
      if (!page.ok()) break;
      EXPECT_LE(page->workspaces.size(), limit);
      for (const WorkspaceInfo& w : page->workspaces) out.push_back(w.workspace);
      if (page->next_cursor.empty()) break;
      EXPECT_EQ(page->next_cursor, page->workspaces.back().workspace);
      cursor = page->next_cursor;
    }
    return out;
  }
  std::unique_ptr<Ledger> ledger_;
  std::set<std::string> ids_;
};

TEST_F(ListWorkspacesTest, PagesListEveryWorkspaceOnceInIdOrder) {
  for (size_t limit : {1u, 7u, 100u, 1000u}) {
    const std::vector<std::string> got = All("", limit);
    EXPECT_EQ(got, std::vector<std::string>(ids_.begin(), ids_.end())) << limit;
  }
}

TEST_F(ListWorkspacesTest, PrefixSelectsAndStatesAreTheWorkspaces) {
  const std::vector<std::string> teams = All("team-", 9);
  ASSERT_EQ(teams.size(), 100u);
  for (const std::string& id : teams) EXPECT_TRUE(id.starts_with("team-"));
  EXPECT_TRUE(std::is_sorted(teams.begin(), teams.end()));
  Result<WorkspacePage> page = ledger_->ListWorkspaces("team-99", 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->workspaces.size(), 1u);
  EXPECT_EQ(page->workspaces[0].workspace, "team-99");
  EXPECT_EQ(page->workspaces[0].limit, 100u);   // the state, as GET answers it
  EXPECT_TRUE(page->next_cursor.empty());
  EXPECT_TRUE(ledger_->ListWorkspaces("nobody", 10)->workspaces.empty());
}

TEST_F(ListWorkspacesTest, VisibleFilterLeavesOutWhatItRefuses) {
  auto only_even = [](std::string_view id) { return (id.back() - '0') % 2 == 0; };
  Result<WorkspacePage> page = ledger_->ListWorkspaces("", 1000, {}, only_even);
  ASSERT_TRUE(page.ok());
  size_t even = 0;
  for (const std::string& id : ids_) even += only_even(id) ? 1 : 0;
  EXPECT_EQ(page->workspaces.size(), even);
  for (const WorkspaceInfo& w : page->workspaces) EXPECT_TRUE(only_even(w.workspace));
}

TEST_F(ListWorkspacesTest, BadArgumentsAreRefused) {
  EXPECT_EQ(ledger_->ListWorkspaces("", 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ledger_->ListWorkspaces("", Ledger::kMaxWorkspacesPage + 1).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ledger_->ListWorkspaces("a b", 10).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ledger_->ListWorkspaces("", 10, "bad cursor").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ledger_->ListWorkspaces(std::string(129, 'a'), 10).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace genledger
