// Private to api.cc and api_admin.cc: what the request routing and the route handlers share.
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

}  // namespace genledger::server
