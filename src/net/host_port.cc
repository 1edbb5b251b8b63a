#include "net/host_port.h"

namespace genledger::net {

Status SplitHostPort(std::string_view text, std::string* host, uint16_t* port,
                     std::optional<uint16_t> default_port) {
  std::string_view h, p;
  bool has_port = true;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return Status(Code::kInvalidArgument, "expected [v6addr]:port");
    h = text.substr(1, close - 1);
    if (close + 1 == text.size()) {
      has_port = false;
    } else if (text[close + 1] != ':') {
      return Status(Code::kInvalidArgument, "expected [v6addr]:port");
    } else {
      p = text.substr(close + 2);
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      h = text;
      has_port = false;
    } else {
      h = text.substr(0, colon);
      p = text.substr(colon + 1);
    }
  }
  if (h.empty()) return Status(Code::kInvalidArgument, "expected host:port (empty host)");
  if (!has_port) {
    if (!default_port) return Status(Code::kInvalidArgument, "expected host:port (no port)");
    host->assign(h);
    *port = *default_port;
    return Status::Ok();
  }
  if (p.empty() || p.size() > 5) return Status(Code::kInvalidArgument, "bad port");
  unsigned v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return Status(Code::kInvalidArgument, "bad port");
    v = v * 10 + unsigned(c - '0');
  }
  if (v > 65535) return Status(Code::kInvalidArgument, "bad port");
  host->assign(h);
  *port = uint16_t(v);
  return Status::Ok();
}

}  // namespace genledger::net
