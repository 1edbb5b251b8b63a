// The server's webhooks: the ledger's registry (Ledger::AddWebhook & co., WAL types 23-25) tied
// to a delivery Engine, and the EventSource that reads the ledger's outboxes and durability.
// One per server (src/server/main.cc); the API routes (src/server/api_webhooks.cc) call it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "genledger/durability.h"
#include "genledger/ledger.h"
#include "webhook/engine.h"

namespace genledger::webhook {

struct ServiceOptions {
  std::string ca_file;                         // --webhook-ca; empty: the system CA store
  uint64_t outbox_bytes = 64ull << 20;         // --webhook-outbox-bytes (enforced by the outbox)
  EngineOptions engine;
};

// The real EventSource: Ledger::ReadEvents and Durability's tickets; progress as WAL type 25.
class LedgerEventSource : public EventSource {
 public:
  LedgerEventSource(Ledger& ledger, Durability* durability) : ledger_(ledger), durability_(durability) {}
  uint32_t ShardCount() const override { return Ledger::ShardCount(); }
  uint64_t ReadEvents(uint32_t shard, uint64_t from_seq, size_t max, std::vector<LedgerEvent>& out,
                      uint64_t* first_kept) override;
  uint64_t Ticket() override { return durability_ ? durability_->Ticket() : 0; }
  bool IsDurable(uint64_t t) override { return durability_ == nullptr || durability_->IsDurable(t); }
  void RequestDurable(uint64_t t) override {
    if (durability_) durability_->RequestDurable(t);
  }
  void KeepEventsFrom(uint32_t shard, uint64_t seq) override;
  void RecordProgress(uint32_t webhook, uint32_t shard, uint64_t next_seq, uint64_t given_up,
                      uint64_t dropped) override;

 private:
  Ledger& ledger_;
  Durability* durability_;
};

class Service {
 public:
  // Errors: kInvalidArgument for a --webhook-ca that OpenSSL cannot load.
  static Result<std::unique_ptr<Service>> Create(Ledger& ledger, Durability* durability, ServiceOptions options);
  ~Service();

  // Starts delivering to every webhook the ledger holds (after recovery), from its cursors.
  void Start();
  void Stop();

  // Checks `spec` (URL syntax and limits: 400 material), registers it in the ledger and starts
  // delivering once the add record is durable.
  Result<WebhookInfo> Add(WebhookInfo spec);
  Status Delete(uint32_t number);
  std::vector<WebhookInfo> List() const { return ledger_.ListWebhooks(); }
  std::vector<DeliveryAttempt> Deliveries(uint32_t number) const { return engine_->Deliveries(number); }
  EngineStats Stats() const { return engine_->Stats(); }
  // The webhook lines of /metrics (Prometheus text).
  std::string RenderMetrics() const;

 private:
  Service(Ledger& ledger, Durability* durability, std::shared_ptr<boost::asio::ssl::context> tls,
          ServiceOptions options);
  static WebhookConfig ToConfig(const WebhookInfo& w);

  Ledger& ledger_;
  Durability* durability_;
  ServiceOptions opts_;
  LedgerEventSource source_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace genledger::webhook
