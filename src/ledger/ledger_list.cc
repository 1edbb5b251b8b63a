// Ledger::ListWorkspaces: a page of workspaces by id, for the dashboard and the clients
// (GET /v1/workspaces, docs/api.md).
#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"

namespace genledger {

namespace {

bool IsIdPrefix(std::string_view prefix) noexcept {
  // A prefix of a valid id: the id alphabet, at most kMaxIdLength bytes; empty matches everything.
  return prefix.empty() || IsValidId(prefix);
}

}  // namespace

Result<WorkspacePage> Ledger::ListWorkspaces(std::string_view prefix, size_t limit, std::string_view cursor,
                                             const std::function<bool(std::string_view)>& visible) const {
  if (limit < 1 || limit > kMaxWorkspacesPage) {
    return Status(Code::kInvalidArgument, "limit must be between 1 and " + std::to_string(kMaxWorkspacesPage));
  }
  if (!IsIdPrefix(prefix)) return Status(Code::kInvalidArgument, "prefix must be at most 128 bytes of [A-Za-z0-9._:@-]");
  if (!cursor.empty() && !IsValidId(cursor)) {
    return Status(Code::kInvalidArgument, "cursor must be a next_cursor returned by this endpoint");
  }
  // Ids are not kept sorted (every create would pay for it): one pass over every shard, one shard
  // lock at a time, keeping the page's ids (plus one, to know whether another page follows) in a
  // bounded max-heap. O(workspaces) per page; the page's states are then read one by one.
  const size_t keep = limit + 1;
  std::vector<std::string> heap;
  for (uint32_t i = 0; i < ledger::kShardCount; ++i) {
    const ledger::Shard& s = impl_->shards[i];
    std::lock_guard lock(s.mu);
    for (const auto& wp : s.workspaces) {
      const std::string& id = wp->id;
      if (!id.starts_with(prefix) || (!cursor.empty() && id <= cursor)) continue;
      if (heap.size() == keep && id >= heap.front()) continue;
      if (visible && !visible(id)) continue;
      if (heap.size() == keep) {
        std::pop_heap(heap.begin(), heap.end());
        heap.back() = id;
      } else {
        heap.push_back(id);
      }
      std::push_heap(heap.begin(), heap.end());
    }
  }
  std::sort_heap(heap.begin(), heap.end());
  WorkspacePage page;
  if (heap.size() > limit) {
    heap.pop_back();
    page.next_cursor = heap.back();
  }
  page.workspaces.reserve(heap.size());
  for (const std::string& id : heap) {
    Result<WorkspaceInfo> info = GetWorkspace(id);   // workspaces are never removed
    if (!info.ok()) return info.status();
    page.workspaces.push_back(std::move(*info));
  }
  return page;
}

}  // namespace genledger
