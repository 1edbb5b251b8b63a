// The default catalog against the seed page, lookup, the JSON schema's validation, ToJson.
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "genledger/catalog.h"

namespace genledger {
namespace {

namespace json = boost::json;

constexpr uint8_t kBoth = RegionBit(Region::kGlobal) | RegionBit(Region::kCn);
constexpr uint8_t kCnOnly = RegionBit(Region::kCn);

struct Pinned {
  std::string_view id;
  std::string_view name;
  Category category;
  std::string_view unit;
  uint32_t rate_milli;
  uint8_t regions;
};

// Transcribed from the seed page; the "(China only)" suffix lives in `regions`.
const std::vector<Pinned> kPinned = {
    {"openai-o3", "Open AI o3", Category::kText, "message", 1000, kBoth},
    {"openai-o3-mini", "Open AI o3 mini", Category::kText, "message", 1000, kBoth},
    {"openai-o4-mini", "Open AI o4 mini", Category::kText, "message", 1000, kBoth},
    {"openai-gpt-4o", "Open AI GPT-4o", Category::kText, "message", 1000, kBoth},
    {"openai-gpt-4.1", "Open AI GPT-4.1", Category::kText, "message", 1000, kBoth},
    {"openai-gpt-5-nano", "Open AI GPT-5 Nano", Category::kText, "message", 1000, kBoth},
    {"openai-gpt-5-mini", "Open AI GPT-5 Mini", Category::kText, "message", 1000, kBoth},
    {"openai-gpt-5", "Open AI GPT-5", Category::kText, "message", 1000, kBoth},
    {"google-gemini-2.0-flash", "Google Gemini 2.0 Flash", Category::kText, "message", 1000, kBoth},
    {"google-gemini-2.5-flash", "Google Gemini 2.5 Flash", Category::kText, "message", 1000, kBoth},
    {"google-gemini-2.5-pro", "Google Gemini 2.5 Pro", Category::kText, "message", 1000, kBoth},
    {"stable-diffusion-3.5-large", "Stable Diffusion 3.5 Large", Category::kImage, "image", 1000, kBoth},
    {"stable-diffusion", "Stable Diffusion", Category::kImage, "image", 1000, kBoth},
    {"openai-gpt-image-1", "Open AI GPT Image 1", Category::kImage, "image", 1000, kBoth},
    {"openai-dall-e-3", "Open AI Dall-E 3", Category::kImage, "image", 1000, kBoth},
    {"nano-banana-gemini-2.5-flash-image", "Nano Banana: Gemini 2.5 Flash Image", Category::kImage, "image", 1000, kBoth},
    {"google-imagen-4-ultra", "Google Imagen 4 Ultra", Category::kImage, "image", 1000, kBoth},
    {"google-imagen-3", "Google Imagen 3", Category::kImage, "image", 1000, kBoth},
    {"getty-images", "Getty Images", Category::kImage, "image", 1000, kBoth},
    {"bria-3.2", "Bria 3.2", Category::kImage, "image", 1000, kBoth},
    {"adobe-firefly-v4-standard", "Adobe Firefly V4 Standard", Category::kImage, "image", 1000, kBoth},
    {"kling-ai-image-2", "Kling AI Image 2", Category::kImage, "image", 1000, kCnOnly},
    {"kling-ai-image-2.1", "Kling AI Image 2.1", Category::kImage, "image", 1000, kCnOnly},
    {"runway-gen3-alpha-turbo", "Runway Gen3 Alpha Turbo", Category::kVideo, "second", 330, kBoth},
    {"runway-gen4-alpha-turbo", "Runway Gen4 Alpha Turbo", Category::kVideo, "second", 330, kBoth},
    {"google-veo2", "Google Veo2", Category::kVideo, "second", 3000, kBoth},
    {"google-veo3", "Google Veo3", Category::kVideo, "second", 2000, kBoth},
    {"google-veo3.1", "Google Veo3.1", Category::kVideo, "second", 2000, kBoth},
    {"adobe-video1-standard", "Adobe Video1 Standard", Category::kVideo, "second", 4000, kBoth},
    {"sora-2", "Sora 2", Category::kVideo, "second", 1000, kBoth},
    {"sora-2-pro", "Sora 2 Pro", Category::kVideo, "second", 3000, kBoth},
    {"kling-ai-video-2.1", "Kling AI Video 2.1", Category::kVideo, "second", 2000, kCnOnly},
    {"kling-ai-video-2.5", "Kling AI Video 2.5", Category::kVideo, "second", 2000, kCnOnly},
    {"google-chirp-3-hd", "Google Chirp 3 HD", Category::kVoiceover, "audio", 1000, kBoth},
    {"google-gemini-2.5-tts-pro", "Google Gemini 2.5 TTS Pro", Category::kVoiceover, "audio", 1000, kBoth},
    {"feed-variation", "Feed Variations", Category::kFeed, "variation", 1000, kBoth},
    {"feed-ai-tool", "AI Tools inside feeds", Category::kFeed, "cell", 1000, kBoth},
    {"image-edit", "Post generation edit", Category::kAction, "edit", 1000, kBoth},
};

TEST(DefaultCatalog, PinnedItemsInSeedOrder) {
  auto catalog = Catalog::Default();
  ASSERT_EQ(catalog->items().size(), kPinned.size());
  for (size_t i = 0; i < kPinned.size(); ++i) {
    const Pinned& p = kPinned[i];
    const CatalogItem& item = catalog->items()[i];
    EXPECT_EQ(item.id, p.id);
    EXPECT_EQ(item.name, p.name) << p.id;
    EXPECT_EQ(item.category, p.category) << p.id;
    EXPECT_EQ(item.unit, p.unit) << p.id;
    EXPECT_EQ(item.rate_milli, p.rate_milli) << p.id;
    EXPECT_EQ(int(item.regions), int(p.regions)) << p.id;
    EXPECT_EQ(item.per_second(), p.category == Category::kVideo) << p.id;
    EXPECT_EQ(catalog->Find(p.id), &item) << p.id;
    EXPECT_EQ(catalog->IndexOf(item), i);
  }
}

TEST(DefaultCatalog, CountsPerCategory) {
  std::map<Category, int> counts;
  for (const CatalogItem& item : Catalog::Default()->items()) ++counts[item.category];
  EXPECT_EQ(counts[Category::kText], 11);
  EXPECT_EQ(counts[Category::kImage], 12);
  EXPECT_EQ(counts[Category::kVideo], 10);
  EXPECT_EQ(counts[Category::kVoiceover], 2);
  EXPECT_EQ(counts[Category::kFeed], 2);
  EXPECT_EQ(counts[Category::kAction], 1);
}

TEST(DefaultCatalog, OnlyKlingIsChinaOnly) {
  for (const CatalogItem& item : Catalog::Default()->items()) {
    const bool kling = item.id.starts_with("kling-");
    EXPECT_EQ(item.available_in(Region::kGlobal), !kling) << item.id;
    EXPECT_TRUE(item.available_in(Region::kCn)) << item.id;
  }
}

TEST(DefaultCatalog, ParsedOnce) { EXPECT_EQ(Catalog::Default(), Catalog::Default()); }

TEST(DefaultCatalog, LookupIgnoresCase) {
  auto catalog = Catalog::Default();
  const CatalogItem* gpt4o = catalog->Find("openai-gpt-4o");
  ASSERT_NE(gpt4o, nullptr);
  EXPECT_EQ(catalog->Find("OPENAI-GPT-4O"), gpt4o);
  EXPECT_EQ(catalog->Find("OpenAI-Gpt-4o"), gpt4o);
  EXPECT_EQ(catalog->Find("gpt-4o"), gpt4o);
  EXPECT_EQ(catalog->Find("GPT-4o"), gpt4o);
  EXPECT_EQ(catalog->Find("Gen4_Turbo"), catalog->Find("runway-gen4-alpha-turbo"));
  EXPECT_EQ(catalog->Find("Nano-Banana"), catalog->Find("nano-banana-gemini-2.5-flash-image"));
}

TEST(DefaultCatalog, LookupMisses) {
  auto catalog = Catalog::Default();
  EXPECT_EQ(catalog->Find(""), nullptr);
  EXPECT_EQ(catalog->Find("gpt-4"), nullptr);
  EXPECT_EQ(catalog->Find("gpt-4o "), nullptr);
  EXPECT_EQ(catalog->Find("Open AI GPT-4o"), nullptr);  // display names are not lookup keys
  EXPECT_EQ(catalog->Find(std::string(65, 'a')), nullptr);
  EXPECT_EQ(catalog->Find(std::string(100'000, 'o')), nullptr);
}

TEST(DefaultCatalog, ProviderAliases) {
  const std::map<std::string_view, std::string_view> expected = {
      {"o3", "openai-o3"}, {"o3-mini", "openai-o3-mini"}, {"o4-mini", "openai-o4-mini"},
      {"gpt-4o", "openai-gpt-4o"}, {"gpt-4.1", "openai-gpt-4.1"},
      {"gpt-5-nano", "openai-gpt-5-nano"}, {"gpt-5-mini", "openai-gpt-5-mini"},
      {"gpt-5", "openai-gpt-5"}, {"gemini-2.0-flash", "google-gemini-2.0-flash"},
      {"gemini-2.5-flash", "google-gemini-2.5-flash"}, {"gemini-2.5-pro", "google-gemini-2.5-pro"},
      {"sd3.5-large", "stable-diffusion-3.5-large"}, {"gpt-image-1", "openai-gpt-image-1"},
      {"dall-e-3", "openai-dall-e-3"}, {"gemini-2.5-flash-image", "nano-banana-gemini-2.5-flash-image"},
      {"imagen-4.0-ultra-generate-001", "google-imagen-4-ultra"},
      {"imagen-3.0-generate-002", "google-imagen-3"}, {"gen3a_turbo", "runway-gen3-alpha-turbo"},
      {"gen4_turbo", "runway-gen4-alpha-turbo"}, {"veo-2", "google-veo2"},
      {"veo-3", "google-veo3"}, {"veo-3.1", "google-veo3.1"},
      {"veo-3.0-generate-001", "google-veo3"}, {"openai-sora-2", "sora-2"},
      {"openai-sora-2-pro", "sora-2-pro"}, {"chirp-3-hd", "google-chirp-3-hd"},
      {"gemini-2.5-pro-tts", "google-gemini-2.5-tts-pro"}};
  auto catalog = Catalog::Default();
  for (auto [alias, id] : expected) {
    const CatalogItem* item = catalog->Find(alias);
    ASSERT_NE(item, nullptr) << alias;
    EXPECT_EQ(item->id, id) << alias;
  }
}

TEST(DefaultCatalog, EveryNameIsUniqueAndFindsItsItem) {
  auto catalog = Catalog::Default();
  std::set<std::string> seen;
  for (const CatalogItem& item : catalog->items()) {
    std::vector<std::string> names = item.aliases;
    names.push_back(item.id);
    for (std::string name : names) {
      EXPECT_EQ(catalog->Find(name), &item) << name;
      for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
      EXPECT_TRUE(seen.insert(name).second) << "duplicate name " << name;
    }
  }
}

TEST(Names, CategoriesAndRegions) {
  EXPECT_EQ(CategoryName(Category::kText), "text");
  EXPECT_EQ(CategoryName(Category::kImage), "image");
  EXPECT_EQ(CategoryName(Category::kVideo), "video");
  EXPECT_EQ(CategoryName(Category::kVoiceover), "voiceover");
  EXPECT_EQ(CategoryName(Category::kFeed), "feed");
  EXPECT_EQ(CategoryName(Category::kAction), "action");
  EXPECT_EQ(RegionName(Region::kGlobal), "global");
  EXPECT_EQ(RegionName(Region::kCn), "cn");
  ASSERT_TRUE(ParseRegion("global").ok());
  EXPECT_EQ(*ParseRegion("global"), Region::kGlobal);
  ASSERT_TRUE(ParseRegion("cn").ok());
  EXPECT_EQ(*ParseRegion("cn"), Region::kCn);
  for (std::string_view bad : {"", "CN", "Global", "china", "us", "cn "}) {
    EXPECT_EQ(ParseRegion(bad).code(), Code::kInvalidArgument) << bad;
  }
}

// --- FromJson validation --------------------------------------------------------------------

constexpr std::string_view kGoodItem =
    R"({"id":"a","name":"A","category":"video","unit":"second","rate":"0.33",)"
    R"("regions":["global","cn"],"aliases":["a-alias"]})";

std::string WithItems(const std::vector<std::string>& items) {
  std::string out = R"({"items":[)";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return out + "]}";
}

// kGoodItem with `field` set to `value` (JSON text), or removed when value is empty.
std::string Edited(std::string_view field, std::string_view value) {
  json::object o = json::parse(kGoodItem).as_object();
  if (value.empty()) {
    o.erase(field);
  } else {
    o[field] = json::parse(value);
  }
  return json::serialize(o);
}

void ExpectError(const std::string& text, std::string_view message_part) {
  auto r = Catalog::FromJson(text);
  ASSERT_FALSE(r.ok()) << "accepted " << text;
  EXPECT_EQ(r.code(), Code::kInvalidArgument) << text;
  EXPECT_NE(r.status().message().find(message_part), std::string_view::npos)
      << text << "\n  message: " << r.status().message() << "\n  lacks: " << message_part;
}

TEST(FromJson, AcceptsAMinimalCatalog) {
  auto r = Catalog::FromJson(WithItems({std::string(kGoodItem)}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const CatalogItem* a = (*r)->Find("A-ALIAS");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->rate_milli, 330u);
  EXPECT_EQ(a->category, Category::kVideo);
  EXPECT_EQ(int(a->regions), int(kBoth));
}

TEST(FromJson, AliasesAreOptional) {
  auto r = Catalog::FromJson(WithItems({Edited("aliases", "")}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE((*r)->items()[0].aliases.empty());
}

TEST(FromJson, BadDocument) {
  ExpectError("", "not valid JSON");
  ExpectError("{", "not valid JSON");
  ExpectError(WithItems({std::string(kGoodItem)}) + "x", "not valid JSON");
  ExpectError("[]", "must be a JSON object");
  ExpectError(R"({"items":[],"version":1})", "unknown top-level field \"version\"");
  ExpectError("{}", "missing top-level field \"items\"");
  ExpectError(R"({"items":{}})", "\"items\" must be an array");
  ExpectError(R"({"items":[]})", "catalog has no items");
  ExpectError(R"({"items":[1]})", "items[0]: item must be a JSON object");
}

TEST(FromJson, HostileFieldsAreNotEchoedInFull) {
  const std::string key(10'000, 'k');
  auto r = Catalog::FromJson(WithItems({Edited(key, "1")}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown field \"kkkk"), std::string_view::npos);
  EXPECT_LT(r.status().message().size(), 200u) << r.status().message();
}

TEST(FromJson, MissingOrUnknownField) {
  for (std::string_view field : {"id", "name", "category", "unit", "rate", "regions"}) {
    ExpectError(WithItems({Edited(field, "")}),
                "missing field \"" + std::string(field) + "\"");
  }
  ExpectError(WithItems({Edited("price", "\"1\"")}), "items[0] (\"a\"): unknown field \"price\"");
  ExpectError(WithItems({Edited("ID", "\"x\"")}), "unknown field \"ID\"");
}

TEST(FromJson, WrongTypes) {
  ExpectError(WithItems({Edited("id", "7")}), "id must be a string");
  ExpectError(WithItems({Edited("name", "null")}), "name must be a string");
  ExpectError(WithItems({Edited("category", "[\"video\"]")}), "category must be a string");
  ExpectError(WithItems({Edited("regions", "\"global\"")}), "regions must be a non-empty array");
  ExpectError(WithItems({Edited("regions", "[1]")}), "regions must contain strings");
  ExpectError(WithItems({Edited("aliases", "\"a-alias\"")}), "aliases must be an array");
  ExpectError(WithItems({Edited("aliases", "[true]")}), "aliases must contain strings");
}

TEST(FromJson, BadId) {
  for (std::string_view id : {R"("")", R"("Upper")", R"("has space")", R"("under_score")",
                              R"("a/b")", R"("é")"}) {
    ExpectError(WithItems({Edited("id", id)}), "items[0]: id ");
  }
  ExpectError(WithItems({Edited("id", "\"" + std::string(65, 'a') + "\"")}),
              "must be 1-64 characters");
  EXPECT_TRUE(Catalog::FromJson(WithItems({Edited("id", "\"" + std::string(64, 'a') + "\"")})).ok());
}

TEST(FromJson, BadName) {
  ExpectError(WithItems({Edited("name", R"("")")}), "name must be 1-128 bytes");
  ExpectError(WithItems({Edited("name", "\"" + std::string(129, 'n') + "\"")}),
              "name must be 1-128 bytes");
  ExpectError(WithItems({Edited("name", R"("tab\there")")}), "control character");
}

TEST(FromJson, BadCategoryOrUnit) {
  ExpectError(WithItems({Edited("category", R"("audio")")}), "unknown category \"audio\"");
  ExpectError(WithItems({Edited("category", R"("Video")")}), "unknown category");
  ExpectError(WithItems({Edited("unit", R"("minute")")}), "unknown unit \"minute\"");
  ExpectError(WithItems({Edited("unit", R"("message")")}),
              "unit \"message\" belongs to category \"text\", not \"video\"");
  ExpectError(WithItems({Edited("category", R"("text")")}),
              "unit \"second\" belongs to category \"video\"");
}

TEST(FromJson, BadRate) {
  ExpectError(WithItems({Edited("rate", "0.33")}), "rate must be a decimal string");
  ExpectError(WithItems({Edited("rate", "1")}), "rate must be a decimal string");
  ExpectError(WithItems({Edited("rate", R"("0")")}), "rate must be greater than 0");
  ExpectError(WithItems({Edited("rate", R"("0.000")")}), "rate must be greater than 0");
  ExpectError(WithItems({Edited("rate", R"("0.3333")")}), "more than 3 decimal places");
  ExpectError(WithItems({Edited("rate", R"("-1")")}), "items[0] (\"a\"): rate");
  ExpectError(WithItems({Edited("rate", R"("1e3")")}), "items[0] (\"a\"): rate");
  ExpectError(WithItems({Edited("rate", R"("1000000.001")")}), "exceeds the maximum 1000000");
  auto max = Catalog::FromJson(WithItems({Edited("rate", R"("1000000")")}));
  ASSERT_TRUE(max.ok()) << max.status().ToString();
  EXPECT_EQ((*max)->items()[0].rate_milli, kMaxRateMilli);
}

TEST(FromJson, BadRegions) {
  ExpectError(WithItems({Edited("regions", "[]")}), "regions must be a non-empty array");
  ExpectError(WithItems({Edited("regions", R"(["us"])")}), "unknown region \"us\"");
  ExpectError(WithItems({Edited("regions", R"(["CN"])")}), "unknown region \"CN\"");
  ExpectError(WithItems({Edited("regions", R"(["cn","cn"])")}), "region \"cn\" is listed twice");
  auto cn = Catalog::FromJson(WithItems({Edited("regions", R"(["cn"])")}));
  ASSERT_TRUE(cn.ok()) << cn.status().ToString();
  EXPECT_EQ(int((*cn)->items()[0].regions), int(kCnOnly));
}

TEST(FromJson, BadAliases) {
  ExpectError(WithItems({Edited("aliases", R"(["GPT-4o"])")}), "alias \"GPT-4o\" must be");
  ExpectError(WithItems({Edited("aliases", R"([""])")}), "alias \"\" must be");
  ExpectError(WithItems({Edited("aliases", R"(["a b"])")}), "alias \"a b\" must be");
  EXPECT_TRUE(Catalog::FromJson(WithItems({Edited("aliases", R"(["gen4_turbo","x:y"])")})).ok());
}

TEST(FromJson, DuplicateNamesNameBothItems) {
  const std::string b = R"({"id":"b","name":"B","category":"text","unit":"message","rate":"1",)"
                        R"("regions":["global"],"aliases":["a-alias"]})";
  ExpectError(WithItems({std::string(kGoodItem), b}),
              "items[1] (\"b\"): alias \"a-alias\" duplicates an id or alias of items[0] (\"a\")");
  ExpectError(WithItems({std::string(kGoodItem), std::string(kGoodItem)}),
              "items[1] (\"a\"): id \"a\" duplicates");
  ExpectError(WithItems({Edited("aliases", R"(["x","x"])")}), "alias \"x\" duplicates");
  ExpectError(WithItems({Edited("aliases", R"(["a"])")}), "alias \"a\" duplicates");
  const std::string c = R"({"id":"a-alias","name":"C","category":"text","unit":"message",)"
                        R"("rate":"1","regions":["cn"]})";
  ExpectError(WithItems({std::string(kGoodItem), c}), "id \"a-alias\" duplicates");
}

// --- ToJson and FromFile ----------------------------------------------------------------------

void ExpectSameItems(const Catalog& a, const Catalog& b) {
  ASSERT_EQ(a.items().size(), b.items().size());
  for (size_t i = 0; i < a.items().size(); ++i) {
    const CatalogItem& x = a.items()[i];
    const CatalogItem& y = b.items()[i];
    EXPECT_EQ(x.id, y.id);
    EXPECT_EQ(x.name, y.name) << x.id;
    EXPECT_EQ(x.category, y.category) << x.id;
    EXPECT_EQ(x.unit, y.unit) << x.id;
    EXPECT_EQ(x.rate_milli, y.rate_milli) << x.id;
    EXPECT_EQ(x.regions, y.regions) << x.id;
    EXPECT_EQ(x.aliases, y.aliases) << x.id;
  }
}

TEST(ToJson, DefaultRoundTrips) {
  auto original = Catalog::Default();
  const std::string text = original->ToJson();
  auto again = Catalog::FromJson(text);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ExpectSameItems(*original, **again);
  EXPECT_EQ((*again)->ToJson(), text);
  EXPECT_EQ((*again)->Find("gen4_turbo"), &(*again)->items()[(*again)->IndexOf(
                                              *(*again)->Find("runway-gen4-alpha-turbo"))]);
}

TEST(ToJson, RatesAreShortestExactDecimalStrings) {
  const std::string text = Catalog::Default()->ToJson();
  EXPECT_NE(text.find(R"("id":"runway-gen4-alpha-turbo","name":"Runway Gen4 Alpha Turbo",)"
                      R"("category":"video","unit":"second","rate":"0.33",)"
                      R"("regions":["global","cn"],"aliases":["gen4_turbo"]})"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"("rate":"2","regions":["cn"])"), std::string::npos);
  for (std::string_view rate : {"0.001", "0.5", "0.05", "1.25", "10", "1000000", "123.456"}) {
    auto r = Catalog::FromJson(WithItems({Edited("rate", "\"" + std::string(rate) + "\"")}));
    ASSERT_TRUE(r.ok()) << rate << ": " << r.status().ToString();
    const std::string out = (*r)->ToJson();
    EXPECT_NE(out.find("\"rate\":\"" + std::string(rate) + "\""), std::string::npos) << out;
    auto back = Catalog::FromJson(out);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ExpectSameItems(**r, **back);
  }
}

TEST(ToJson, NonAsciiNamesAndRegionOrderRoundTrip) {
  std::string item = Edited("name", R"("Kling AI 可灵 \"2\"")");
  item = json::serialize([&] {
    json::object o = json::parse(item).as_object();
    o["regions"] = json::parse(R"(["cn","global"])");
    return o;
  }());
  auto r = Catalog::FromJson(WithItems({item}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto back = Catalog::FromJson((*r)->ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameItems(**r, **back);
  EXPECT_EQ((*back)->items()[0].name, "Kling AI 可灵 \"2\"");
}

std::string WriteTemp(std::string_view name, std::string_view contents) {
  const std::string path = ::testing::TempDir() + "/" + std::string(name);
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

TEST(FromFile, MissingFileNamesTheFile) {
  const std::string path = ::testing::TempDir() + "/no-such-catalog.json";
  std::remove(path.c_str());
  auto r = Catalog::FromFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Code::kNotFound);
  EXPECT_NE(r.status().message().find(path), std::string_view::npos) << r.status().message();
}

TEST(FromFile, ReadsAValidFile) {
  const std::string path = WriteTemp("default-catalog.json", Catalog::Default()->ToJson());
  auto r = Catalog::FromFile(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectSameItems(*Catalog::Default(), **r);
}

TEST(FromFile, InvalidContentNamesFileAndProblem) {
  const std::string path = WriteTemp("bad-catalog.json", R"({"items":[]})");
  auto r = Catalog::FromFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find(path), std::string_view::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("no items"), std::string_view::npos) << r.status().message();
}

}  // namespace
}  // namespace genledger
