// The /v1/webhooks routes (docs/webhooks.md): register, list, delete, recent deliveries. The
// registry is ledger state (WAL types 23/24); delivery is webhook::Service's.
#include <boost/json.hpp>
#include <charconv>

#include "server/api.h"
#include "server/api_internal.h"
#include "webhook/config.h"
#include "webhook/event_json.h"
#include "webhook/service.h"

namespace genledger::server {
namespace {

namespace json = boost::json;

json::array EventNames(uint8_t events) {
  json::array a;
  if (events & webhook::kEventAlert) a.emplace_back("alert");
  if (events & webhook::kEventDepleted) a.emplace_back("depleted");
  if (events & webhook::kEventPeriodReset) a.emplace_back("period_reset");
  return a;
}

// The webhook as answered: never the secret.
json::object Describe(const WebhookInfo& w) {
  json::object o;
  o["webhook"] = "wh_" + std::to_string(w.number);
  o["url"] = w.url;
  o["events"] = EventNames(w.events);
  if (w.workspaces) {
    json::array a;
    for (const std::string& id : *w.workspaces) a.emplace_back(id);
    o["workspaces"] = std::move(a);
  } else {
    o["workspaces"] = nullptr;
  }
  o["created_ms"] = w.created_ms;
  return o;
}

// "wh_<n>" -> n (0 if malformed).
uint32_t ParseWebhookId(std::string_view id) {
  if (!id.starts_with("wh_")) return 0;
  uint32_t n = 0;
  auto [p, ec] = std::from_chars(id.data() + 3, id.data() + id.size(), n);
  return ec == std::errc() && p == id.data() + id.size() ? n : 0;
}

void Bad(HttpReply& out, std::string msg) { SetError(out, 400, "invalid_argument", std::move(msg)); }

// Parses POST /v1/webhooks's body into `w`; false (and `out` filled) when it is not valid.
bool ParseSpec(std::string_view body, WebhookInfo& w, HttpReply& out) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return Bad(out, "the body must be a JSON object"), false;
  const json::object& o = v.as_object();
  for (const auto& kv : o) {
    const std::string_view k = kv.key();
    if (k != "url" && k != "events" && k != "workspaces" && k != "secret") {
      return Bad(out, "unknown field '" + std::string(k.substr(0, 64)) + "'"), false;
    }
  }
  const json::value* url = o.if_contains("url");
  if (url == nullptr || !url->is_string()) return Bad(out, "field 'url' (a string) is required"), false;
  w.url = std::string(url->as_string());
  const json::value* secret = o.if_contains("secret");
  if (secret == nullptr || !secret->is_string()) return Bad(out, "field 'secret' (a string) is required"), false;
  w.secret = std::string(secret->as_string());
  w.events = webhook::kEventAll;
  if (const json::value* ev = o.if_contains("events"); ev != nullptr) {
    if (!ev->is_array() || ev->as_array().empty() || ev->as_array().size() > 3) {
      return Bad(out, "field 'events' must be a list of 1-3 of alert, depleted, period_reset"), false;
    }
    w.events = 0;
    for (const json::value& e : ev->as_array()) {
      const uint8_t bit = e.is_string() ? webhook::EventBit(e.as_string()) : 0;
      if (bit == 0 || (w.events & bit) != 0) {
        return Bad(out, "field 'events' must be a list of 1-3 of alert, depleted, period_reset, without repeats"), false;
      }
      w.events |= bit;
    }
  }
  if (const json::value* ws = o.if_contains("workspaces"); ws != nullptr && !ws->is_null()) {
    if (!ws->is_array()) return Bad(out, "field 'workspaces' must be null or a list of workspace ids"), false;
    w.workspaces.emplace();
    for (const json::value& id : ws->as_array()) {
      if (!id.is_string()) return Bad(out, "field 'workspaces' must be null or a list of workspace ids"), false;
      w.workspaces->emplace_back(id.as_string());
    }
  }
  return true;
}

}  // namespace

void Api::HandleAddWebhook(const Call& c, HttpReply& out) {
  if (webhooks_ == nullptr) return SetError(out, 503, "unavailable", "webhooks are not enabled on this server");
  WebhookInfo spec;
  if (!ParseSpec(c.body, spec, out)) return;
  spec.created_ms = SystemClock().NowMs();
  Result<WebhookInfo> added = webhooks_->Add(std::move(spec));
  out.ledger_state = true;   // answered once the webhook_add record is durable
  if (!added.ok()) {
    // Limits are the caller's to fix: 400 (not 429) for the 32-webhook ceiling too.
    if (added.code() == Code::kCapacityExhausted) return Bad(out, std::string(added.status().message()));
    return SetError(out, WireError::FromStatus(added.status()));
  }
  out.status = 201;
  out.body = json::serialize(Describe(*added));
}

void Api::HandleListWebhooks(const Call&, HttpReply& out) {
  if (webhooks_ == nullptr) return SetError(out, 503, "unavailable", "webhooks are not enabled on this server");
  json::array a;
  for (const WebhookInfo& w : webhooks_->List()) a.emplace_back(Describe(w));
  out.ledger_state = true;
  out.body = json::serialize(json::object{{"webhooks", std::move(a)}});
}

void Api::HandleDeleteWebhook(const Call& c, HttpReply& out) {
  if (webhooks_ == nullptr) return SetError(out, 503, "unavailable", "webhooks are not enabled on this server");
  const uint32_t n = ParseWebhookId(c.seg[2]);
  out.ledger_state = true;
  if (Status st = n == 0 ? Status(Code::kNotFound, "no webhook " + std::string(c.seg[2].substr(0, 64)))
                         : webhooks_->Delete(n);
      !st.ok()) {
    return SetError(out, WireError::FromStatus(st));
  }
  out.body = json::serialize(json::object{{"deleted", "wh_" + std::to_string(n)}});
}

void Api::HandleWebhookDeliveries(const Call& c, HttpReply& out) {
  if (webhooks_ == nullptr) return SetError(out, 503, "unavailable", "webhooks are not enabled on this server");
  const uint32_t n = ParseWebhookId(c.seg[2]);
  bool known = false;
  for (const WebhookInfo& w : webhooks_->List()) known |= w.number == n;
  if (!known) return SetError(out, 404, "not_found", "no webhook " + std::string(c.seg[2].substr(0, 64)));
  json::array a;
  for (const webhook::DeliveryAttempt& d : webhooks_->Deliveries(n)) {
    json::object o;
    o["event"] = webhook::EventIdText(d.event_id);
    o["attempt"] = d.attempt;
    o["status"] = d.status;
    o["error"] = d.error;
    o["at_ms"] = d.at_ms;
    if (d.retry_in_ms != 0) o["retry_in_ms"] = d.retry_in_ms;
    if (d.delivered) o["delivered"] = true;
    if (d.given_up) o["given_up"] = true;
    a.emplace_back(std::move(o));
  }
  out.body = json::serialize(json::object{{"webhook", "wh_" + std::to_string(n)}, {"deliveries", std::move(a)}});
}

}  // namespace genledger::server
