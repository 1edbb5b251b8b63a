// Fuzz target: the catalog loader (Catalog::FromJson, docs/pricing.md) and Cost on what it accepts.
// Properties checked besides "no crash": an accepted catalog serializes (ToJson) to JSON that
// loads again and serializes to the same text; every id and alias finds its own item.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "genledger/catalog.h"

using namespace genledger;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto catalog = Catalog::FromJson(text);
  (void)ParseDecimalMilli(text, kMaxSecondsMilli);
  if (!catalog.ok()) return 0;
  const Catalog& c = **catalog;
  const std::string json = c.ToJson();
  auto again = Catalog::FromJson(json);
  if (!again.ok()) fuzz::Fail("ToJson output does not load:", again.status().ToString());
  if ((*again)->ToJson() != json) fuzz::Fail("catalog does not round-trip");
  for (const CatalogItem& item : c.items()) {
    if (c.Find(item.id) != &item) fuzz::Fail("id does not find its item:", item.id);
    for (const auto& alias : item.aliases) {
      if (c.Find(alias) != &item) fuzz::Fail("alias does not find its item:", alias);
    }
    Usage u;
    if (item.per_second()) {
      u.seconds_milli = kMaxSecondsMilli;
      u.outputs = kMaxOutputs;
    } else {
      u.quantity = kMaxQuantity;
    }
    if (!Cost(item, u).ok()) fuzz::Fail("largest usage refused:", item.id);
  }
  return 0;
}
