// genledger-load: --target parsing (target.h).
#include "load/target.h"

#include <charconv>

namespace genledger::load {

bool ParseTarget(const std::string& url, Target& t, std::string& err) {
  std::string rest;
  if (url.rfind("ws://", 0) == 0) {
    t.ws = true;
    rest = url.substr(5);
  } else if (url.rfind("http://", 0) == 0) {
    t.ws = false;
    rest = url.substr(7);
  } else {
    err = "--target must start with ws:// or http:// (got '" + url + "')";
    return false;
  }
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  t.path = slash == std::string::npos ? "" : rest.substr(slash);
  if (t.ws && (t.path.empty() || t.path == "/")) t.path = "/v1/ws";
  if (!t.ws && t.path != "" && t.path != "/") {
    err = "an http:// --target is the server's base URL (no path), got '" + url + "'";
    return false;
  }
  if (!hostport.empty() && hostport[0] == '[') {
    size_t close = hostport.find(']');
    if (close == std::string::npos || close + 1 >= hostport.size() || hostport[close + 1] != ':') {
      err = "bad host:port in --target '" + url + "'";
      return false;
    }
    t.host = hostport.substr(1, close - 1);
    t.port = hostport.substr(close + 2);
  } else {
    size_t colon = hostport.rfind(':');
    if (colon == std::string::npos) {
      t.host = hostport;
      t.port = "80";
    } else {
      t.host = hostport.substr(0, colon);
      t.port = hostport.substr(colon + 1);
    }
  }
  unsigned port = 0;
  auto r = std::from_chars(t.port.data(), t.port.data() + t.port.size(), port);
  if (t.host.empty() || r.ec != std::errc() || r.ptr != t.port.data() + t.port.size() ||
      port == 0 || port > 65535) {
    err = "bad host:port in --target '" + url + "'";
    return false;
  }
  return true;
}

}  // namespace genledger::load
