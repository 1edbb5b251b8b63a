// Child of webhook_crash_test: a real ledger on a data directory (webhook registry and progress
// records in its WAL) and a delivery engine, fed a fixed stream of events (4 shards x N: the
// same ids in every incarnation, as the ledger's derived events are), delivering to a receiver
// on 127.0.0.1:<port>. Runs until killed (kill -9 by the test).
//   webhook_crash_child DATA_DIR PORT EVENTS_PER_SHARD
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "genledger/durability.h"
#include "genledger/ledger.h"
#include "webhook/engine.h"
#include "webhook/service.h"

namespace {

using namespace genledger;  // NOLINT

class FixedEvents : public webhook::LedgerEventSource {
 public:
  FixedEvents(Ledger& l, Durability* d, uint64_t n) : LedgerEventSource(l, d), n_(n) {}
  uint64_t ReadEvents(uint32_t shard, uint64_t from, size_t max, std::vector<LedgerEvent>& out,
                      uint64_t* first_kept) override {
    if (first_kept) *first_kept = 1;
    if (shard >= 4) return from;
    uint64_t seq = from;
    for (; seq <= n_ && out.size() < max; ++seq) {
      LedgerEvent e;
      e.id = (seq << 8) | shard;
      e.kind = EventKind::kDepleted;
      e.workspace = "ws" + std::to_string(shard);
      out.push_back(e);
    }
    return seq;
  }
  void KeepEventsFrom(uint32_t, uint64_t) override {}

 private:
  uint64_t n_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  Ledger ledger(Catalog::Default());
  DurabilityOptions o;
  o.data_dir = argv[1];
  o.snapshot_interval_s = 0;
  auto d = Durability::Open(ledger, o);
  if (!d.ok()) {
    std::fprintf(stderr, "open: %s\n", d.status().ToString().c_str());
    return 1;
  }
  if (ledger.ListWebhooks().empty()) {
    WebhookInfo w;
    w.url = std::string("http://127.0.0.1:") + argv[2] + "/hook";
    w.secret = "whsec_crash_0123456789";
    if (!ledger.AddWebhook(w).ok() || !(*d)->WaitDurable((*d)->Ticket()).ok()) return 1;
  }
  FixedEvents source(ledger, d->get(), std::strtoull(argv[3], nullptr, 10));
  webhook::EngineOptions eo;
  eo.poll_interval_ms = 2;
  eo.backoff_initial_ms = 5;
  eo.backoff_cap_ms = 20;
  webhook::Engine engine(source, nullptr, eo);
  for (const WebhookInfo& w : ledger.ListWebhooks()) {
    std::vector<uint64_t> cursors;
    for (const WebhookCursor& c : ledger.WebhookCursors(w.number)) cursors.push_back(c.next_seq);
    engine.AddWebhook(webhook::WebhookConfig{w.number, w.url, w.events, w.workspaces, w.secret, w.created_ms},
                      cursors);
  }
  engine.Start();
  for (;;) pause();
}
