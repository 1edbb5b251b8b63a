// genledger-load: the --target URL (ws://host:port[/path] or http://host:port).
#pragma once

#include <string>

namespace genledger::load {

struct Target {
  bool ws = false;
  std::string host, port, path;
};

// Parses `url` into `t`. On failure returns false and sets `err` to a message naming the flag.
// A ws:// target without a path gets /v1/ws; an http:// target is the server's base URL.
bool ParseTarget(const std::string& url, Target& t, std::string& err);

}  // namespace genledger::load
