// AdoptStartupCatalog: which catalog a server runs with after recovery (docs/pricing.md).
#include <string>
#include <utility>

#include "genledger/durability.h"
#include "ledger/ledger_log.h"

namespace genledger {

Result<std::string> AdoptStartupCatalog(Ledger& ledger, Durability& durability, std::shared_ptr<const Catalog> given) {
  std::string what;
  if (!LedgerLog::CatalogReplaced(ledger)) {
    // Without this record a later start with another --catalog could not tell that this one was
    // in force: the directory would have no catalog to be authoritative with.
    if (Status st = LedgerLog::LogStartupCatalog(ledger); !st.ok()) return st;
    what = "the data directory had no catalog: the start-up catalog is logged as version 1";
  }
  uint64_t version = 0;
  const std::shared_ptr<const Catalog> current = ledger.CurrentCatalog(&version);
  if (given != nullptr && given->ToJson() != current->ToJson()) {
    Result<uint64_t> v = ledger.ReplaceCatalog(std::move(given));
    if (!v.ok()) return v.status();
    if (!what.empty()) what += "; ";
    what += "--catalog differs from the data directory's catalog (version " + std::to_string(version) +
            "): applied as version " + std::to_string(*v);
  } else if (what.empty()) {
    what = "the data directory's catalog, version " + std::to_string(version) +
           (given != nullptr ? " (--catalog is the same)" : "");
  }
  if (Status st = durability.WaitDurable(durability.Ticket()); !st.ok()) return st;
  return what;
}

}  // namespace genledger
