// genledger-load: synchronous HTTP for setup and verification (a handful of calls per run,
// not the hot path), and the workspace read both use.
#pragma once

#include <cstdint>
#include <string>

#include <boost/beast/http/verb.hpp>

#include "load/target.h"

namespace genledger::load {

struct SyncReply {
  int status = 0;   // 0: transport error (see body)
  std::string body;
};

// One request on a fresh connection (10 s timeout); `token` empty sends no Authorization.
// Never throws: a transport failure is status 0 with the reason in body.
SyncReply SyncHttp(const Target& t, boost::beast::http::verb verb, const std::string& target,
                   const std::string& body, const std::string& token);

struct WorkspaceTotals {
  int64_t used = 0, reserved = 0;
};

// GET /v1/workspaces/{ws}: fills `s`, or returns false with `err` naming the request.
bool ReadWorkspace(const Target& t, const std::string& ws, const std::string& token,
                   WorkspaceTotals& s, std::string& err);

}  // namespace genledger::load
