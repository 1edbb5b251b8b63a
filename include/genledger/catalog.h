// The pricing catalog: what each model costs, in exact integer arithmetic.
//
// Rates are decimals with at most 3 decimal places, stored as integer thousandths
// ("rate_milli": 0.33 -> 330, 2 -> 2000). Seconds are decimals with at most 3 decimal places,
// stored as integer milliseconds. No floating point is used anywhere in this module.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "genledger/status.h"

namespace genledger {

enum class Category : uint8_t { kText, kImage, kVideo, kVoiceover, kFeed, kAction };

// Regions form a bit set so an item can list several.
enum class Region : uint8_t { kGlobal = 0, kCn = 1 };
inline constexpr uint8_t RegionBit(Region r) noexcept { return uint8_t(1u << uint8_t(r)); }

// The units an item can be priced in (docs/pricing.md). The numeric values are stored in WAL
// records and snapshots (docs/wal-records.md, type 13): never renumber them.
enum class Unit : uint8_t { kMessage = 0, kImage = 1, kSecond = 2, kAudio = 3, kVariation = 4, kCell = 5, kEdit = 6 };
inline constexpr uint8_t kMaxUnitCode = 6;

std::string_view CategoryName(Category c) noexcept;   // "text", "image", ...
std::string_view UnitName(Unit u) noexcept;           // "message", "image", "second", ...
// Parses a unit name (exact, lower case). kInvalidArgument otherwise.
Result<Unit> ParseUnit(std::string_view text);
std::string_view RegionName(Region r) noexcept;       // "global", "cn"
// Parses "global" / "cn" (exact, lower case). kInvalidArgument otherwise.
Result<Region> ParseRegion(std::string_view text);

// Bounds that make overflow impossible: every cost fits comfortably in 64 bits.
inline constexpr uint64_t kMaxQuantity = 1'000'000;           // units per request
inline constexpr uint64_t kMaxSecondsMilli = 86'400'000;      // 24 h of video per output
inline constexpr uint32_t kMaxOutputs = 100;                  // outputs per video request
inline constexpr uint32_t kMaxFormats = 1'000;                // feed-variation formats (free)
inline constexpr uint32_t kMaxRateMilli = 1'000'000'000;      // 1,000,000 generations per unit

struct CatalogItem {
  std::string id;          // pinned, lower case, e.g. "runway-gen4-alpha-turbo"
  std::string name;        // display name from the seed page
  Category category = Category::kText;
  std::string unit;        // "message", "image", "second", "audio", "variation", "cell", "edit"
  uint32_t rate_milli = 0; // generations per unit, in thousandths
  uint8_t regions = RegionBit(Region::kGlobal);   // bit set of RegionBit()
  std::vector<std::string> aliases;               // extra lookup names (provider API names)
  // `id`, interned for the whole process (InternModelId): the items of every catalog with this
  // id point to the same string, so the pointer identifies the model across catalog versions (the
  // ledger's idempotency entries keep it; comparing two is one compare). Set by Catalog; null in
  // an item built by hand.
  const std::string* interned_id = nullptr;

  // True when the item is priced per second of output (takes `seconds`, optional `outputs`).
  bool per_second() const noexcept { return unit == "second"; }
  bool available_in(Region r) const noexcept { return (regions & RegionBit(r)) != 0; }
};

// What a request asks for, already parsed. Per-second items use seconds_milli and outputs;
// every other item uses quantity. Unused fields must be zero (outputs may be 0 = "not given").
struct Usage {
  uint64_t quantity = 0;       // positive integer units, for non-per-second items
  uint64_t seconds_milli = 0;  // positive, for per-second items
  uint32_t outputs = 0;        // 0 means 1; at most kMaxOutputs
  uint32_t formats = 0;        // feed-variation only; never changes the cost
};

// What pricing needs of an item besides the usage: a reservation keeps it, so that its commit
// is priced exactly as when it was reserved whatever the catalog says later.
struct Price {
  Unit unit = Unit::kMessage;
  uint32_t rate_milli = 0;
};
// The price of a catalog item. kInvalidArgument if its unit is not one of Unit's names (a
// catalog never holds such an item).
Result<Price> PriceOf(const CatalogItem& item);

// Cost in whole generations:
//   per-second items: outputs x ceil(rate_milli x seconds_milli / 1,000,000)
//   other items:      ceil(rate_milli x quantity / 1,000)   (exact for the seed's integer rates)
// Requires: nothing. Guarantees: kInvalidQuantity with a message naming the field when the
// usage does not fit the item (missing, zero, over a bound, quantity on a per-second item,
// seconds on a unit item, formats on anything but feed-variation); never overflows.
// Thread-safe (pure function).
Result<uint64_t> Cost(const CatalogItem& item, const Usage& usage);
// The same rules for a Price; `model` names the item in error messages.
Result<uint64_t> Cost(const Price& price, const Usage& usage, std::string_view model);

// The largest usage of `price` whose cost is at most `budget` generations (any budget, UINT64_MAX
// included): MaxQuantity in units for items not priced per second, MaxSecondsMilli in
// milliseconds of each of `outputs` outputs (0 means 1) for per-second items. Closed forms
// (docs/pricing.md, "Largest affordable usage"), with n = max(outputs, 1):
//   MaxQuantity     = min(kMaxQuantity,     floor(budget x 1,000 / rate_milli))
//   MaxSecondsMilli = min(kMaxSecondsMilli, floor(floor(budget / n) x 1,000,000 / rate_milli))
// and the cap for a free item (rate 0). Guarantees: exact against Cost(): for the result m,
// m <= the cap; m = 0 exactly when the smallest usage (1 unit / 1 ms) costs more than `budget`;
// otherwise Cost(m) <= budget and, unless m is the cap, Cost(m + 1) > budget (for seconds:
// m + 1 ms). kInvalidQuantity when `outputs` > kMaxOutputs or when the function does not fit the
// price's unit (MaxQuantity of a per-second item, MaxSecondsMilli of any other). Integer
// arithmetic only, never overflows for any 32-bit rate; thread-safe (pure function).
Result<uint64_t> MaxQuantity(const Price& price, uint64_t budget);
Result<uint64_t> MaxSecondsMilli(const Price& price, uint32_t outputs, uint64_t budget);

// Parses a non-negative decimal with at most 3 fractional digits from its JSON text
// ("3", "3.03", "0.5", "1e1" is rejected) into thousandths: "3.03" -> 3030.
// kInvalidQuantity for anything else (sign, exponent, >3 decimals, empty, overflow past `max`).
Result<uint64_t> ParseDecimalMilli(std::string_view text, uint64_t max);

// The process-wide copy of a model id: the same pointer for equal ids, for the life of the
// process (interned ids are never freed; there are as many as distinct model ids ever seen).
// Takes a mutex: for building catalogs and recovery, not for a request path (which reads
// CatalogItem::interned_id). Thread-safe.
const std::string* InternModelId(std::string_view id);

// An immutable set of items with case-insensitive lookup by id or alias.
// Thread-safe after construction (all methods const).
class Catalog {
 public:
  // The catalog built from the seed pricing page, embedded in the binary.
  static std::shared_ptr<const Catalog> Default();

  // Parses the JSON schema documented in docs/pricing.md. Errors (kInvalidArgument) name the
  // problem and the offending item: bad JSON, missing/extra field, unknown category/unit/region,
  // bad rate, duplicate id or alias (case-insensitive), empty catalog.
  static Result<std::shared_ptr<const Catalog>> FromJson(std::string_view json);
  // Reads and parses a file; errors name the file.
  static Result<std::shared_ptr<const Catalog>> FromFile(const std::string& path);

  // The item whose id or alias equals `name` ignoring ASCII case, or nullptr.
  const CatalogItem* Find(std::string_view name) const noexcept;

  // Items in catalog order; an item's position is its stable index for this catalog.
  const std::vector<CatalogItem>& items() const noexcept { return items_; }
  // Position of `item` in items(). Requires: item belongs to this catalog.
  uint32_t IndexOf(const CatalogItem& item) const noexcept {
    return static_cast<uint32_t>(&item - items_.data());
  }

  // The catalog as JSON in the same schema FromJson reads (round-trips exactly).
  std::string ToJson() const;

 private:
  struct Index;
  Catalog();
  std::vector<CatalogItem> items_;
  std::shared_ptr<const Index> index_;   // lower-cased name -> position
  friend struct CatalogBuilder;
};

}  // namespace genledger
