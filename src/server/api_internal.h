// Private to api.cc, api_admin.cc and api_plan.cc: what the request routing and the route handlers share.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "server/api.h"
#include "server/protocol.h"

namespace genledger::server {

// One routed HTTP request, as the route handlers see it.
struct Api::Call {
  std::string_view method;
  std::string_view seg[5];   // the path's segments, e.g. {"v1", "workspaces", ws, "users", user}
  int n = 0;
  std::string_view query;
  std::string_view body;
  std::string_view authorization;
  Role role = Role::kNone;
  Grant grant;   // role and scope (grant.role == role)
};

// Fills `out` with the error reply for `e`.
inline void SetError(HttpReply& out, const WireError& e) {
  out.status = e.http;
  out.body = ErrorBody(e);
}

inline void SetError(HttpReply& out, int http, std::string_view code, std::string msg) {
  SetError(out, WireError::Make(http, code, std::move(msg)));
}

// The calling thread's parse buffer for request bodies: one per thread, so its capacity is
// reused from request to request. Valid until the thread's next ParseBody into it.
inline ParsedBody& ThreadParsedBody() {
  thread_local ParsedBody body;
  return body;
}

// Parses an admin body holding one object with fields among `allowed`, all of `required`;
// nullptr (and `out` filled with the error) when it is not. (api_admin.cc)
const OpRequest* ParseAdminBody(std::string_view body, uint32_t allowed, uint32_t required,
                                bool allow_empty, HttpReply& out);
// Answers a workspace (GET, PUT, top-up, reset) or the error. (api_admin.cc)
void ReplyWorkspace(const Result<WorkspaceInfo>& w, HttpReply& out);

// The subscription fields PUT /v1/workspaces/{ws} accepts besides limit and region, and their
// translation into `update` (api_plan.cc): 400 naming the field for a combination the body
// cannot mean ("limit_change" without "limit").
inline constexpr uint32_t kWorkspacePlanFields =
    kFPeriod | kFPlanPriority | kFRollover | kFOverageMode | kFOverageLimit | kFLimitChange;
WireError WorkspacePlanUpdate(const OpRequest& r, WorkspaceUpdate& update);

// Logs, at most once a minute, that a capacity ceiling answered 429 (any other status: nothing).
// api_ops.cc; called for gate ops and for HTTP replies.
void NoteStatus(int status);

}  // namespace genledger::server
