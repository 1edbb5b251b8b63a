// Catalog: parsing and validating the JSON catalog (schema in docs/pricing.md), lookup, ToJson.
#include "genledger/catalog.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <exception>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <system_error>
#include <unordered_set>
#include <utility>

#include <boost/json.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include "util/utf8.h"

namespace genledger {
namespace pricing_internal {
std::string FormatMilli(uint64_t milli);  // defined in cost.cc
}  // namespace pricing_internal

namespace {

namespace json = boost::json;

constexpr size_t kMaxNameChars = 64;         // ids and aliases
constexpr size_t kMaxDisplayNameBytes = 128;

constexpr std::array<Category, 6> kCategories = {Category::kText,  Category::kImage,
                                                 Category::kVideo, Category::kVoiceover,
                                                 Category::kFeed,  Category::kAction};

// Each unit belongs to exactly one category; per_second() keys off the unit, so a "second"
// item outside video (or a video item billed per message) would silently change semantics.
struct UnitRule {
  std::string_view unit;
  Category category;
};
constexpr std::array<UnitRule, 7> kUnits = {{{"message", Category::kText},
                                             {"image", Category::kImage},
                                             {"second", Category::kVideo},
                                             {"audio", Category::kVoiceover},
                                             {"variation", Category::kFeed},
                                             {"cell", Category::kFeed},
                                             {"edit", Category::kAction}}};

constexpr std::array<std::string_view, 7> kItemFields = {"id",   "name",    "category", "unit",
                                                         "rate", "regions", "aliases"};

struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

char Lower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

bool IsLowerNameChar(char c, bool allow_colon_underscore) {
  if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-') return true;
  return allow_colon_underscore && (c == '_' || c == ':');
}

// Ids: lower case [a-z0-9._-]. Aliases also allow '_' and ':' because provider API names use
// them (Runway's "gen4_turbo").
bool ValidName(std::string_view s, bool is_alias) {
  if (s.empty() || s.size() > kMaxNameChars) return false;
  for (char c : s) {
    if (!IsLowerNameChar(c, is_alias)) return false;
  }
  return true;
}

// Echoes at most 64 bytes of `s` so a hostile catalog cannot bloat the error message or make
// it invalid UTF-8.
std::string Quoted(std::string_view s) {
  constexpr size_t kMaxEcho = 64;
  return "\"" + util::Utf8Shorten(s, kMaxEcho) + "\"";
}

Status Bad(std::string message) { return Status(Code::kInvalidArgument, std::move(message)); }

}  // namespace

struct Catalog::Index {
  boost::unordered_flat_map<std::string, uint32_t, NameHash, std::equal_to<>> by_name;
};

Catalog::Catalog() = default;

std::string_view CategoryName(Category c) noexcept {
  switch (c) {
    case Category::kText: return "text";
    case Category::kImage: return "image";
    case Category::kVideo: return "video";
    case Category::kVoiceover: return "voiceover";
    case Category::kFeed: return "feed";
    case Category::kAction: return "action";
  }
  return "unknown";
}

std::string_view UnitName(Unit u) noexcept {
  switch (u) {
    case Unit::kMessage: return "message";
    case Unit::kImage: return "image";
    case Unit::kSecond: return "second";
    case Unit::kAudio: return "audio";
    case Unit::kVariation: return "variation";
    case Unit::kCell: return "cell";
    case Unit::kEdit: return "edit";
  }
  return "unknown";
}

Result<Unit> ParseUnit(std::string_view text) {
  for (uint8_t code = 0; code <= kMaxUnitCode; ++code) {
    if (text == UnitName(Unit(code))) return Unit(code);
  }
  return Status(Code::kInvalidArgument, "unknown unit " + Quoted(text));
}

std::string_view RegionName(Region r) noexcept {
  switch (r) {
    case Region::kGlobal: return "global";
    case Region::kCn: return "cn";
  }
  return "unknown";
}

Result<Region> ParseRegion(std::string_view text) {
  for (Region r : {Region::kGlobal, Region::kCn}) {
    if (text == RegionName(r)) return r;
  }
  return Status(Code::kInvalidArgument,
                "unknown region " + Quoted(text) + " (expected \"global\" or \"cn\")");
}

// Turns parsed JSON into a validated Catalog. The only code allowed to construct one.
struct CatalogBuilder {
  static Result<std::shared_ptr<const Catalog>> FromValue(const json::value& root);

 private:
  static Result<CatalogItem> ParseItem(const json::value& v, const std::string& where);
  static Status ParseRegions(const json::value& v, CatalogItem& item);
  static Status ParseAliases(const json::value& v, CatalogItem& item);
};

Result<std::shared_ptr<const Catalog>> CatalogBuilder::FromValue(const json::value& root) {
  const json::object* top = root.if_object();
  if (top == nullptr) return Bad("catalog must be a JSON object {\"items\": [...]}");
  for (const auto& kv : *top) {
    if (kv.key() != "items") return Bad("unknown top-level field " + Quoted(kv.key()));
  }
  const json::value* items_v = top->if_contains("items");
  if (items_v == nullptr) return Bad("missing top-level field \"items\"");
  const json::array* items = items_v->if_array();
  if (items == nullptr) return Bad("\"items\" must be an array");
  if (items->empty()) return Bad("catalog has no items");

  std::shared_ptr<Catalog> catalog(new Catalog());
  auto index = std::make_shared<Catalog::Index>();
  catalog->items_.reserve(items->size());
  // labels[i] names item i in errors, so a duplicate can point at both items.
  std::vector<std::string> labels;
  for (size_t i = 0; i < items->size(); ++i) {
    std::string where = "items[" + std::to_string(i) + "]";
    if (const json::object* o = (*items)[i].if_object()) {
      const json::value* id_v = o->if_contains("id");
      const json::string* id = id_v != nullptr ? id_v->if_string() : nullptr;
      if (id != nullptr && ValidName(*id, false)) where += " (" + Quoted(*id) + ")";
    }
    Result<CatalogItem> item = ParseItem((*items)[i], where);
    if (!item.ok()) return item.status();
    labels.push_back(where);

    const auto pos = static_cast<uint32_t>(i);
    auto add_name = [&](const std::string& name, std::string_view kind) -> Status {
      // Names are validated lower case, so the key is already the lower-cased form.
      auto [it, inserted] = index->by_name.try_emplace(name, pos);
      if (inserted) return Status::Ok();
      return Bad(where + ": " + std::string(kind) + " " + Quoted(name) +
                 " duplicates an id or alias of " + labels[it->second] +
                 " (lookup ignores case)");
    };
    if (Status s = add_name(item->id, "id"); !s.ok()) return s;
    for (const std::string& alias : item->aliases) {
      if (Status s = add_name(alias, "alias"); !s.ok()) return s;
    }
    catalog->items_.push_back(std::move(item).value());
    catalog->items_.back().interned_id = InternModelId(catalog->items_.back().id);
  }
  catalog->index_ = std::move(index);
  return std::shared_ptr<const Catalog>(std::move(catalog));
}

Result<CatalogItem> CatalogBuilder::ParseItem(const json::value& v, const std::string& where) {
  const json::object* o = v.if_object();
  if (o == nullptr) return Bad(where + ": item must be a JSON object");
  for (const auto& kv : *o) {
    if (std::find(kItemFields.begin(), kItemFields.end(), kv.key()) == kItemFields.end()) {
      return Bad(where + ": unknown field " + Quoted(kv.key()));
    }
  }
  // `aliases` may be omitted; every other field is required.
  auto string_field = [&](std::string_view key, const json::string*& out) -> Status {
    const json::value* f = o->if_contains(key);
    if (f == nullptr) return Bad(where + ": missing field " + Quoted(key));
    out = f->if_string();
    if (out == nullptr) return Bad(where + ": " + std::string(key) + " must be a string");
    return Status::Ok();
  };
  const json::string *id, *name, *category, *unit, *rate;
  const std::pair<std::string_view, const json::string**> required[] = {
      {"id", &id}, {"name", &name}, {"category", &category}, {"unit", &unit}, {"rate", &rate}};
  for (const auto& [key, out] : required) {
    if (Status s = string_field(key, *out); !s.ok()) {
      const json::value* f = o->if_contains(key);
      if (key == "rate" && f != nullptr && f->is_number()) {
        return Bad(where + ": rate must be a decimal string such as \"0.33\", not a JSON "
                           "number (a string keeps it exact)");
      }
      return s;
    }
  }

  CatalogItem item;
  if (!ValidName(*id, false)) {
    return Bad(where + ": id " + Quoted(*id) +
               " must be 1-64 characters of [a-z0-9._-]");
  }
  item.id.assign(id->data(), id->size());

  if (name->empty() || name->size() > kMaxDisplayNameBytes) {
    return Bad(where + ": name must be 1-128 bytes");
  }
  for (char c : *name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Bad(where + ": name contains a control character");
    }
  }
  item.name.assign(name->data(), name->size());

  auto cat = std::find_if(kCategories.begin(), kCategories.end(),
                          [&](Category c) { return CategoryName(c) == *category; });
  if (cat == kCategories.end()) {
    return Bad(where + ": unknown category " + Quoted(*category) +
               " (expected text, image, video, voiceover, feed or action)");
  }
  item.category = *cat;

  auto rule = std::find_if(kUnits.begin(), kUnits.end(),
                           [&](const UnitRule& r) { return r.unit == *unit; });
  if (rule == kUnits.end()) {
    return Bad(where + ": unknown unit " + Quoted(*unit) +
               " (expected message, image, second, audio, variation, cell or edit)");
  }
  if (rule->category != item.category) {
    return Bad(where + ": unit " + Quoted(*unit) + " belongs to category " +
               Quoted(CategoryName(rule->category)) + ", not " + Quoted(*category));
  }
  item.unit.assign(unit->data(), unit->size());

  Result<uint64_t> rate_milli = ParseDecimalMilli(*rate, kMaxRateMilli);
  if (!rate_milli.ok()) {
    return Bad(where + ": rate " + std::string(rate_milli.status().message()) +
               " (at most 3 decimal places, at most " +
               pricing_internal::FormatMilli(kMaxRateMilli) + ")");
  }
  if (*rate_milli == 0) return Bad(where + ": rate must be greater than 0");
  item.rate_milli = static_cast<uint32_t>(*rate_milli);

  const json::value* regions = o->if_contains("regions");
  if (regions == nullptr) return Bad(where + ": missing field \"regions\"");
  if (Status s = ParseRegions(*regions, item); !s.ok()) return Bad(where + ": " + std::string(s.message()));

  if (const json::value* aliases = o->if_contains("aliases")) {
    if (Status s = ParseAliases(*aliases, item); !s.ok()) return Bad(where + ": " + std::string(s.message()));
  }
  return item;
}

Status CatalogBuilder::ParseRegions(const json::value& v, CatalogItem& item) {
  const json::array* a = v.if_array();
  if (a == nullptr || a->empty()) {
    return Bad("regions must be a non-empty array such as [\"global\", \"cn\"]");
  }
  item.regions = 0;
  for (const json::value& r : *a) {
    const json::string* s = r.if_string();
    if (s == nullptr) return Bad("regions must contain strings");
    Result<Region> region = ParseRegion(*s);
    if (!region.ok()) return region.status();
    if (item.available_in(*region)) return Bad("region " + Quoted(*s) + " is listed twice");
    item.regions |= RegionBit(*region);
  }
  return Status::Ok();
}

Status CatalogBuilder::ParseAliases(const json::value& v, CatalogItem& item) {
  const json::array* a = v.if_array();
  if (a == nullptr) return Bad("aliases must be an array of strings");
  for (const json::value& alias : *a) {
    const json::string* s = alias.if_string();
    if (s == nullptr) return Bad("aliases must contain strings");
    if (!ValidName(*s, true)) {
      return Bad("alias " + Quoted(*s) +
                 " must be 1-64 characters of [a-z0-9_.:-]");
    }
    item.aliases.emplace_back(s->data(), s->size());
  }
  return Status::Ok();
}

const std::string* InternModelId(std::string_view id) {
  // Never destroyed: catalogs and ledgers that outlive static destruction may still compare them.
  static std::mutex* mu = new std::mutex;
  static auto* pool = new std::unordered_set<std::string>;
  std::lock_guard lock(*mu);
  return &*pool->emplace(id).first;   // node-based: an element's address never changes
}

Result<std::shared_ptr<const Catalog>> Catalog::FromJson(std::string_view text) {
  try {
    boost::system::error_code ec;
    json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
    if (ec) return Bad("catalog is not valid JSON: " + ec.message());
    return CatalogBuilder::FromValue(root);
  } catch (const std::exception& e) {  // allocation failure is the only expected one
    return Bad(std::string("catalog could not be parsed: ") + e.what());
  }
}

Result<std::shared_ptr<const Catalog>> Catalog::FromFile(const std::string& path) {
  // The whole path, not Quoted(): an operator needs to see exactly which file was meant.
  const std::string file = "catalog file \"" + path + "\": ";
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return Status(Code::kNotFound, file + (err != 0 ? std::generic_category().message(err)
                                                    : std::string("cannot open")));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return Status(Code::kIOError, file + "read failed");
  Result<std::shared_ptr<const Catalog>> parsed = FromJson(buf.str());
  if (!parsed.ok()) return Status(parsed.code(), file + std::string(parsed.status().message()));
  return parsed;
}

const CatalogItem* Catalog::Find(std::string_view name) const noexcept {
  // Keys are at most kMaxNameChars, so a longer name cannot match; lowering into a stack
  // buffer keeps lookup allocation-free (and so truly noexcept).
  if (name.empty() || name.size() > kMaxNameChars || index_ == nullptr) return nullptr;
  char lowered[kMaxNameChars];
  for (size_t i = 0; i < name.size(); ++i) lowered[i] = Lower(name[i]);
  auto it = index_->by_name.find(std::string_view(lowered, name.size()));
  return it == index_->by_name.end() ? nullptr : &items_[it->second];
}

std::string Catalog::ToJson() const {
  // One item per line: readable as a starting point for a --catalog file, and diff-friendly.
  std::string out = "{\"items\":[\n";
  for (size_t i = 0; i < items_.size(); ++i) {
    const CatalogItem& item = items_[i];
    json::array regions;
    for (Region r : {Region::kGlobal, Region::kCn}) {
      if (item.available_in(r)) regions.emplace_back(RegionName(r));
    }
    json::array aliases;
    for (const std::string& a : item.aliases) aliases.emplace_back(a);
    json::object o;
    o["id"] = item.id;
    o["name"] = item.name;
    o["category"] = CategoryName(item.category);
    o["unit"] = item.unit;
    o["rate"] = pricing_internal::FormatMilli(item.rate_milli);
    o["regions"] = std::move(regions);
    o["aliases"] = std::move(aliases);
    out += "  ";
    out += json::serialize(o);
    out += i + 1 < items_.size() ? ",\n" : "\n";
  }
  out += "]}\n";
  return out;
}

}  // namespace genledger
