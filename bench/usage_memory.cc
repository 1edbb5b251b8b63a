// Memory of usage history for N workspaces x 5 users x 3 models (bench/RESULTS.md, "Usage
// history"): builds the population once with history off and once on (in two processes, as
// `usage_memory off N` / `usage_memory on N`), every (user, model) charged once on one day, and
// prints the process's RSS after it and the bytes the ledger counts for history.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

#include "genledger/ledger.h"

namespace {

uint64_t RssBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  if (std::fscanf(f, "%llu %llu", &size, &resident) != 2) resident = 0;
  std::fclose(f);
  return resident * uint64_t(sysconf(_SC_PAGESIZE));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace genledger;
  if (argc < 3 || (std::strcmp(argv[1], "on") != 0 && std::strcmp(argv[1], "off") != 0)) {
    std::fprintf(stderr, "usage: usage_memory on|off WORKSPACES [DAYS]\n");
    return 2;
  }
  const bool on = std::strcmp(argv[1], "on") == 0;
  const uint64_t n = std::strtoull(argv[2], nullptr, 10);
  const uint64_t days = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1;
  ManualClock clock;
  LedgerOptions opt;
  opt.clock = &clock;
  opt.usage_history_bytes = on ? uint64_t(64) << 30 : 0;
  opt.max_users = 20'000'000;
  Ledger ledger(Catalog::Default(), opt);
  const auto catalog = ledger.CurrentCatalog();
  const CatalogItem* models[3] = {catalog->Find("openai-gpt-4o"), catalog->Find("stable-diffusion"),
                                  catalog->Find("openai-o3")};
  const char* users[5] = {"u0", "u1", "u2", "u3", "u4"};
  const uint64_t before = RssBytes();
  char id[32];
  for (uint64_t d = 0; d < days; ++d) {
    for (uint64_t w = 0; w < n; ++w) {
      std::snprintf(id, sizeof id, "ws-%07llu", static_cast<unsigned long long>(w));
      if (d == 0) (void)ledger.UpsertWorkspace(id, kUnlimited, Region::kGlobal);
      for (const char* u : users) {
        for (const CatalogItem* m : models) {
          ChargeRequest r{id, u, m, {}, {}};
          r.usage.quantity = 1;
          if (!ledger.Charge(r).status.ok()) return 1;
        }
      }
    }
    clock.Advance(24 * 3600 * 1000);
  }
  const LedgerTotals t = ledger.Totals();
  const uint64_t after = RssBytes();
  std::printf("history %s, %llu workspaces x 5 users x 3 models x %llu day(s): RSS %.1f MB (+%.1f MB), "
              "history counted %.1f MB (%.0f bytes per workspace), folded %llu\n",
              on ? "on" : "off", static_cast<unsigned long long>(n), static_cast<unsigned long long>(days),
              after / 1e6, (after - before) / 1e6, t.usage_history_bytes / 1e6,
              double(t.usage_history_bytes) / double(n), static_cast<unsigned long long>(t.usage_history_folded));
  return 0;
}
