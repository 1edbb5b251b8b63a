#include "webhook/config.h"

#include <algorithm>

#include "net/host_port.h"

namespace genledger::webhook {

bool WebhookConfig::Wants(const LedgerEvent& e) const {
  const uint8_t bit = e.kind == EventKind::kAlert      ? kEventAlert
                      : e.kind == EventKind::kDepleted ? kEventDepleted
                                                       : kEventPeriodReset;
  if ((events & bit) == 0) return false;
  if (!workspaces) return true;
  return std::find(workspaces->begin(), workspaces->end(), e.workspace) != workspaces->end();
}

uint8_t EventBit(std::string_view name) {
  if (name == "alert") return kEventAlert;
  if (name == "depleted") return kEventDepleted;
  if (name == "period_reset") return kEventPeriodReset;
  return 0;
}

Result<ParsedUrl> ParseUrl(std::string_view url) {
  ParsedUrl p;
  std::string_view rest;
  if (url.starts_with("https://")) {
    p.tls = true;
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    return Status(Code::kInvalidArgument, "url must start with https:// or http://");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return Status(Code::kInvalidArgument, "url has a space, control or non-ASCII character");
    }
  }
  if (url.find('#') != std::string_view::npos) return Status(Code::kInvalidArgument, "url has a fragment");
  const size_t slash = std::min(rest.find('/'), rest.find('?'));
  std::string_view authority = rest.substr(0, slash);
  p.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (p.target.front() == '?') p.target.insert(p.target.begin(), '/');
  if (authority.find('@') != std::string_view::npos) {
    return Status(Code::kInvalidArgument, "url must not carry user info");
  }
  if (Status st = net::SplitHostPort(authority, &p.host, &p.port, p.tls ? 443 : 80); !st.ok()) {
    return Status(Code::kInvalidArgument, "url host: " + std::string(st.message()));
  }
  if (p.port == 0) return Status(Code::kInvalidArgument, "url port 0");
  return p;
}

Status Validate(const WebhookConfig& c) {
  if (c.url.empty() || c.url.size() > kMaxUrlBytes) {
    return Status(Code::kInvalidArgument, "url must be 1-" + std::to_string(kMaxUrlBytes) + " bytes");
  }
  if (auto u = ParseUrl(c.url); !u.ok()) return u.status();
  if (c.secret.size() < kMinSecretBytes || c.secret.size() > kMaxSecretBytes) {
    return Status(Code::kInvalidArgument, "secret must be " + std::to_string(kMinSecretBytes) + "-" +
                                              std::to_string(kMaxSecretBytes) + " bytes");
  }
  if (c.events == 0 || (c.events & ~kEventAll) != 0) {
    return Status(Code::kInvalidArgument, "events must name at least one of alert, depleted, period_reset");
  }
  if (c.workspaces) {
    if (c.workspaces->empty() || c.workspaces->size() > kMaxWorkspaces) {
      return Status(Code::kInvalidArgument,
                    "workspaces must be null or a list of 1-" + std::to_string(kMaxWorkspaces) + " ids");
    }
    for (const std::string& w : *c.workspaces) {
      if (w.empty() || w.size() > 128) return Status(Code::kInvalidArgument, "workspace ids are 1-128 bytes");
    }
  }
  return Status::Ok();
}

}  // namespace genledger::webhook
