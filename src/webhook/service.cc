#include "webhook/service.h"

#include "log/log.h"
#include "webhook/http_client.h"

namespace genledger::webhook {

uint64_t LedgerEventSource::ReadEvents(uint32_t shard, uint64_t from_seq, size_t max, std::vector<LedgerEvent>& out,
                                       uint64_t* first_kept) {
  return ledger_.ReadEvents(shard, from_seq, max, out, first_kept);
}

void LedgerEventSource::KeepEventsFrom(uint32_t shard, uint64_t seq) {
  ledger_.KeepEventsFrom(shard, seq);
}

void LedgerEventSource::RecordProgress(uint32_t webhook, uint32_t shard, uint64_t next_seq, uint64_t given_up,
                                       uint64_t dropped) {
  Status st = ledger_.RecordWebhookProgress(webhook, shard, next_seq, given_up, dropped);
  // kNotFound: deleted meanwhile. Anything else (the WAL is behind or failed): the cursor is
  // recorded with the stream's next advance; until then a restart resends, which is allowed.
  if (!st.ok() && st.code() != Code::kNotFound) {
    static log::RateLimit limit(10'000);
    if (uint64_t more; limit.Allow(0, &more)) {
      log::Warn("webhook wh_{}: progress not recorded: {} ({} more)", webhook, st.ToString(), more);
    }
  }
}

Result<std::unique_ptr<Service>> Service::Create(Ledger& ledger, Durability* durability, ServiceOptions options) {
  auto tls = MakeTlsContext(options.ca_file);
  if (!tls.ok()) return tls.status();
  return std::unique_ptr<Service>(new Service(ledger, durability, *tls, std::move(options)));
}

Service::Service(Ledger& ledger, Durability* durability, std::shared_ptr<boost::asio::ssl::context> tls,
                 ServiceOptions options)
    : ledger_(ledger), durability_(durability), opts_(std::move(options)), source_(ledger, durability) {
  engine_ = std::make_unique<Engine>(source_, std::move(tls), opts_.engine);
}

Service::~Service() { Stop(); }

WebhookConfig Service::ToConfig(const WebhookInfo& w) {
  return WebhookConfig{w.number, w.url, w.events, w.workspaces, w.secret, w.created_ms};
}

void Service::Start() {
  for (const WebhookInfo& w : ledger_.ListWebhooks()) {
    std::vector<uint64_t> cursors;
    for (const WebhookCursor& c : ledger_.WebhookCursors(w.number)) cursors.push_back(c.next_seq);
    engine_->AddWebhook(ToConfig(w), std::move(cursors));
  }
  engine_->Start();
}

void Service::Stop() { engine_->Stop(); }

Result<WebhookInfo> Service::Add(WebhookInfo spec) {
  WebhookConfig check = ToConfig(spec);
  check.number = 1;
  if (Status st = Validate(check); !st.ok()) return st;
  Result<WebhookInfo> added = ledger_.AddWebhook(std::move(spec));
  if (!added.ok()) return added;
  // The add record is durable once this ticket is; the engine waits for it before delivering.
  const uint64_t ticket = durability_ != nullptr ? durability_->Ticket() : 0;
  std::vector<uint64_t> cursors;
  for (const WebhookCursor& c : ledger_.WebhookCursors(added->number)) cursors.push_back(c.next_seq);
  engine_->AddWebhook(ToConfig(*added), std::move(cursors), ticket);
  log::Info("webhook wh_{} added: {}", added->number, added->url);
  return added;
}

Status Service::Delete(uint32_t number) {
  if (Status st = ledger_.DeleteWebhook(number); !st.ok()) return st;
  engine_->RemoveWebhook(number);
  log::Info("webhook wh_{} deleted", number);
  return Status();
}

std::string Service::RenderMetrics() const {
  const EngineStats s = engine_->Stats();
  std::string out;
  auto line = [&](const char* name, const char* type, const char* help, uint64_t v) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
    out += name;
    out += ' ';
    out += std::to_string(v);
    out += '\n';
  };
  line("genledger_webhook_deliveries_total", "counter", "Webhook events answered 2xx.", s.delivered);
  line("genledger_webhook_attempts_failed_total", "counter", "Webhook attempts that failed (non-2xx or network).",
       s.failed_attempts);
  line("genledger_webhook_events_given_up_total", "counter", "Webhook events given up after 24 h of retries.",
       s.given_up);
  line("genledger_webhook_events_dropped_total", "counter", "Webhook events dropped by the outbox ceiling.",
       s.dropped);
  line("genledger_webhook_in_flight", "gauge", "Webhook requests in flight.", s.in_flight);
  return out;
}

}  // namespace genledger::webhook
