// genledger-load: --target parsing (target.h).
#include "load/target.h"

#include "net/host_port.h"

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
  uint16_t port = 0;
  if (!net::SplitHostPort(hostport, &t.host, &port, 80).ok() || port == 0) {
    err = "bad host:port in --target '" + url + "'";
    return false;
  }
  t.port = std::to_string(port);
  return true;
}

}  // namespace genledger::load
