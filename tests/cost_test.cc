// Cost() against the seed pricing page, item by item, plus every bound and malformed usage.
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "genledger/catalog.h"

namespace genledger {
namespace {

const CatalogItem& Item(std::string_view id) {
  static const std::shared_ptr<const Catalog> catalog = Catalog::Default();
  const CatalogItem* item = catalog->Find(id);
  if (item == nullptr) {
    ADD_FAILURE() << "default catalog has no " << id;
    static const CatalogItem kMissing;
    return kMissing;
  }
  return *item;
}

Usage Quantity(uint64_t q) { return Usage{.quantity = q}; }
Usage Seconds(uint64_t milli, uint32_t outputs = 0) {
  return Usage{.seconds_milli = milli, .outputs = outputs};
}

uint64_t CostOk(const CatalogItem& item, const Usage& usage) {
  Result<uint64_t> r = Cost(item, usage);
  EXPECT_TRUE(r.ok()) << item.id << ": " << r.status().ToString();
  return r.ok() ? *r : ~uint64_t{0};
}

void ExpectInvalid(const CatalogItem& item, const Usage& usage, std::string_view message_part) {
  Result<uint64_t> r = Cost(item, usage);
  ASSERT_FALSE(r.ok()) << item.id << " priced at " << *r;
  EXPECT_EQ(r.code(), Code::kInvalidQuantity) << item.id;
  EXPECT_NE(r.status().message().find(message_part), std::string_view::npos)
      << item.id << ": \"" << r.status().message() << "\" lacks \"" << message_part << "\"";
}

// The seed's unit-priced items: 1 generation per message / image / audio / variation / cell /
// edit.
const std::vector<std::string_view> kOnePerUnit = {
    "openai-o3", "openai-o3-mini", "openai-o4-mini", "openai-gpt-4o", "openai-gpt-4.1",
    "openai-gpt-5-nano", "openai-gpt-5-mini", "openai-gpt-5", "google-gemini-2.0-flash",
    "google-gemini-2.5-flash", "google-gemini-2.5-pro",
    "stable-diffusion-3.5-large", "stable-diffusion", "openai-gpt-image-1", "openai-dall-e-3",
    "nano-banana-gemini-2.5-flash-image", "google-imagen-4-ultra", "google-imagen-3",
    "getty-images", "bria-3.2", "adobe-firefly-v4-standard", "kling-ai-image-2",
    "kling-ai-image-2.1",
    "google-chirp-3-hd", "google-gemini-2.5-tts-pro",
    "feed-variation", "feed-ai-tool", "image-edit"};

// The seed's video items, with expected costs of one output worked out by hand from the seed
// rate (seconds in milliseconds -> generations).
struct VideoCase {
  std::string_view id;
  std::vector<std::pair<uint64_t, uint64_t>> seconds_to_cost;
};
const std::vector<VideoCase> kVideo = {
    {"runway-gen3-alpha-turbo",  // 0.33 / s
     {{1000, 1}, {3000, 1}, {5000, 2}, {10000, 4}, {100000, 33}, {300000, 99}, {1, 1},
      {3030, 1}, {3031, 2}, {86'400'000, 28512}}},
    {"runway-gen4-alpha-turbo",  // 0.33 / s; the seed's example: 5 s = 1.65 -> 2
     {{5000, 2}, {1000, 1}, {3000, 1}, {100000, 33}, {1, 1}, {3030, 1}, {3031, 2},
      {6060, 2}, {6061, 3}}},
    {"google-veo2",  // 3 / s
     {{1000, 3}, {3000, 9}, {500, 2}, {1, 1}, {333, 1}, {334, 2}, {86'400'000, 259200}}},
    {"google-veo3",  // 2 / s; the seed's example: 3 s = 6
     {{3000, 6}, {1000, 2}, {500, 1}, {501, 2}, {1500, 3}, {1250, 3}, {1, 1}}},
    {"google-veo3.1",  // 2 / s
     {{3000, 6}, {8000, 16}, {500, 1}, {501, 2}, {1, 1}}},
    {"adobe-video1-standard",  // 4 / s
     {{1000, 4}, {250, 1}, {300, 2}, {2750, 11}, {5000, 20}, {1, 1}}},
    {"sora-2",  // 1 / s
     {{1000, 1}, {4000, 4}, {10500, 11}, {12000, 12}, {1, 1}, {86'400'000, 86400}}},
    {"sora-2-pro",  // 3 / s
     {{10000, 30}, {333, 1}, {334, 2}, {4000, 12}, {1, 1}}},
    {"kling-ai-video-2.1",  // 2 / s
     {{5000, 10}, {10000, 20}, {2400, 5}, {1, 1}}},
    {"kling-ai-video-2.5",  // 2 / s
     {{5000, 10}, {10000, 20}, {2500, 5}, {1, 1}}},
};

TEST(Cost, EveryDefaultItemIsCoveredBelow) {
  std::set<std::string_view> covered(kOnePerUnit.begin(), kOnePerUnit.end());
  for (const VideoCase& v : kVideo) covered.insert(v.id);
  std::set<std::string_view> in_catalog;
  for (const CatalogItem& item : Catalog::Default()->items()) in_catalog.insert(item.id);
  EXPECT_EQ(covered, in_catalog);
}

TEST(Cost, UnitItemsCostOneGenerationPerUnit) {
  for (std::string_view id : kOnePerUnit) {
    const CatalogItem& item = Item(id);
    EXPECT_FALSE(item.per_second()) << id;
    for (uint64_t q : {uint64_t{1}, uint64_t{2}, uint64_t{5}, uint64_t{20}, kMaxQuantity}) {
      EXPECT_EQ(CostOk(item, Quantity(q)), q) << id << " x " << q;
    }
  }
}

TEST(Cost, VideoItemsPerSeedRateRoundedUpPerOutput) {
  for (const VideoCase& v : kVideo) {
    const CatalogItem& item = Item(v.id);
    EXPECT_TRUE(item.per_second()) << v.id;
    for (auto [milli, cost] : v.seconds_to_cost) {
      EXPECT_EQ(CostOk(item, Seconds(milli)), cost) << v.id << " " << milli << " ms";
    }
  }
}

TEST(Cost, SeedExamples) {
  EXPECT_EQ(CostOk(Item("runway-gen4-alpha-turbo"), Seconds(5000)), 2u);  // 1.65 -> 2
  EXPECT_EQ(CostOk(Item("google-veo3"), Seconds(3000)), 6u);              // 6 -> 6
  EXPECT_EQ(CostOk(Item("feed-variation"), Quantity(20)), 20u);           // 20 variations
  EXPECT_EQ(CostOk(Item("feed-ai-tool"), Quantity(5)), 5u);               // 5 cells
  EXPECT_EQ(CostOk(Item("image-edit"), Quantity(1)), 1u);                 // 1 edit
}

TEST(Cost, ExactMultiplesDoNotRoundUp) {
  const CatalogItem& runway = Item("runway-gen3-alpha-turbo");
  EXPECT_EQ(CostOk(runway, Seconds(100'000)), 33u);   // 33.000
  EXPECT_EQ(CostOk(runway, Seconds(200'000)), 66u);
  EXPECT_EQ(CostOk(runway, Seconds(3'000'000)), 990u);
  EXPECT_EQ(CostOk(Item("google-veo3"), Seconds(500)), 1u);          // 1.000
  EXPECT_EQ(CostOk(Item("adobe-video1-standard"), Seconds(250)), 1u);
}

TEST(Cost, OutputsMultiplyThePerOutputRoundedCost) {
  const CatalogItem& runway = Item("runway-gen4-alpha-turbo");
  EXPECT_EQ(CostOk(runway, Seconds(5000, 2)), 4u);   // 2 x ceil(1.65); ceil(3.3) is also 4
  EXPECT_EQ(CostOk(runway, Seconds(1000, 3)), 3u);   // 3 x ceil(0.33); ceil(0.99) would be 1
  EXPECT_EQ(CostOk(runway, Seconds(5000, 3)), 6u);   // 3 x 2; ceil(4.95) would be 5
  EXPECT_EQ(CostOk(Item("google-veo3"), Seconds(1, 100)), 100u);  // ceil(0.2) would be 1
  EXPECT_EQ(CostOk(Item("sora-2"), Seconds(1500, 2)), 4u);        // 2 x 2; total 3
  EXPECT_EQ(CostOk(Item("google-veo2"), Seconds(3000, 4)), 36u);  // exact: 4 x 9
}

TEST(Cost, OutputsZeroMeansOne) {
  for (const VideoCase& v : kVideo) {
    const CatalogItem& item = Item(v.id);
    EXPECT_EQ(CostOk(item, Seconds(7300, 0)), CostOk(item, Seconds(7300, 1))) << v.id;
  }
}

TEST(Cost, UpperBoundsAreInclusive) {
  EXPECT_EQ(CostOk(Item("openai-gpt-4o"), Quantity(kMaxQuantity)), kMaxQuantity);
  EXPECT_EQ(CostOk(Item("sora-2"), Seconds(kMaxSecondsMilli, kMaxOutputs)),
            uint64_t{86400} * kMaxOutputs);
  EXPECT_EQ(CostOk(Item("feed-variation"), Usage{.quantity = 1, .formats = kMaxFormats}), 1u);
}

TEST(Cost, ZeroOrMissingAmountIsRejected) {
  ExpectInvalid(Item("openai-gpt-4o"), Usage{}, "quantity is required for openai-gpt-4o");
  ExpectInvalid(Item("feed-variation"), Usage{.formats = 5}, "quantity is required");
  ExpectInvalid(Item("runway-gen4-alpha-turbo"), Usage{},
                "seconds is required for runway-gen4-alpha-turbo");
  ExpectInvalid(Item("google-veo3"), Seconds(0, 2), "seconds is required");
}

TEST(Cost, AmountsOverTheBoundsAreRejected) {
  ExpectInvalid(Item("openai-gpt-image-1"), Quantity(kMaxQuantity + 1),
                "quantity must be at most 1000000");
  ExpectInvalid(Item("google-veo2"), Seconds(kMaxSecondsMilli + 1),
                "seconds must be at most 86400");
  ExpectInvalid(Item("google-veo2"), Seconds(1000, kMaxOutputs + 1),
                "outputs must be at most 100");
  ExpectInvalid(Item("feed-variation"), Usage{.quantity = 1, .formats = kMaxFormats + 1},
                "formats must be at most 1000");
  ExpectInvalid(Item("sora-2"), Seconds(std::numeric_limits<uint64_t>::max()), "seconds");
  ExpectInvalid(Item("image-edit"), Quantity(std::numeric_limits<uint64_t>::max()), "quantity");
}

TEST(Cost, WrongKindOfAmountIsRejected) {
  ExpectInvalid(Item("sora-2"), Usage{.quantity = 1, .seconds_milli = 1000},
                "quantity does not apply to sora-2");
  ExpectInvalid(Item("sora-2"), Quantity(3), "use seconds");
  ExpectInvalid(Item("openai-gpt-4o"), Seconds(1000), "seconds applies only to per-second items");
  ExpectInvalid(Item("openai-gpt-4o"), Usage{.quantity = 1, .seconds_milli = 1000},
                "seconds applies only");
  ExpectInvalid(Item("openai-dall-e-3"), Usage{.quantity = 1, .outputs = 2},
                "outputs applies only to per-second items");
}

TEST(Cost, FormatsAreOnlyForFeedVariations) {
  ExpectInvalid(Item("openai-gpt-4o"), Usage{.quantity = 1, .formats = 1},
                "formats applies only to feed-variation");
  ExpectInvalid(Item("feed-ai-tool"), Usage{.quantity = 1, .formats = 5}, "formats applies only");
  ExpectInvalid(Item("image-edit"), Usage{.quantity = 1, .formats = 5}, "formats applies only");
  ExpectInvalid(Item("sora-2"), Usage{.seconds_milli = 1000, .formats = 2}, "formats applies only");
}

TEST(Cost, FormatsNeverChangeTheFeedVariationCost) {
  const CatalogItem& feed = Item("feed-variation");
  for (uint64_t variations : {uint64_t{1}, uint64_t{20}}) {
    for (uint32_t formats : {0u, 1u, 5u, 999u, kMaxFormats}) {
      EXPECT_EQ(CostOk(feed, Usage{.quantity = variations, .formats = formats}), variations)
          << variations << " variations, " << formats << " formats";
    }
  }
}

// Hand-made items: fractional unit rates round up, and the largest representable rate with
// the largest usage does not overflow.
TEST(Cost, FractionalUnitRatesRoundUpAndExtremeRatesDoNotOverflow) {
  CatalogItem third;
  third.id = "third";
  third.unit = "message";
  third.rate_milli = 333;
  EXPECT_EQ(CostOk(third, Quantity(3)), 1u);      // 0.999
  EXPECT_EQ(CostOk(third, Quantity(4)), 2u);      // 1.332
  EXPECT_EQ(CostOk(third, Quantity(1000)), 333u); // exact
  CatalogItem video;
  video.id = "big";
  video.category = Category::kVideo;
  video.unit = "second";
  video.rate_milli = kMaxRateMilli;
  EXPECT_EQ(CostOk(video, Seconds(kMaxSecondsMilli, kMaxOutputs)),
            uint64_t{1'000'000} * 86'400 * kMaxOutputs);
  video.rate_milli = std::numeric_limits<uint32_t>::max();
  EXPECT_EQ(CostOk(video, Seconds(kMaxSecondsMilli, kMaxOutputs)),
            uint64_t{371'085'174'288} * kMaxOutputs);  // 4294967.295 x 86400, exact
  third.rate_milli = std::numeric_limits<uint32_t>::max();
  EXPECT_EQ(CostOk(third, Quantity(kMaxQuantity)), uint64_t{4'294'967'295'000});
}

// A Price (what a hold keeps) is priced exactly as its catalog item, with the same refusals.
TEST(Cost, PriceOfEveryItemCostsTheSameAsTheItem) {
  const Usage usages[] = {Quantity(1), Quantity(7), Seconds(1), Seconds(4'321, 3), Usage{.quantity = 2, .formats = 5}};
  for (const CatalogItem& item : Catalog::Default()->items()) {
    Result<Price> price = PriceOf(item);
    ASSERT_TRUE(price.ok()) << item.id;
    EXPECT_EQ(UnitName(price->unit), item.unit);
    EXPECT_EQ(price->rate_milli, item.rate_milli);
    for (const Usage& u : usages) {
      Result<uint64_t> a = Cost(item, u), b = Cost(*price, u, item.id);
      ASSERT_EQ(a.code(), b.code()) << item.id;
      if (a.ok()) {
        EXPECT_EQ(*a, *b) << item.id;
      } else {
        EXPECT_EQ(a.status().message(), b.status().message()) << item.id;
      }
    }
  }
  for (uint8_t code = 0; code <= kMaxUnitCode; ++code) {
    EXPECT_EQ(ParseUnit(UnitName(Unit(code))).value(), Unit(code));
  }
  EXPECT_EQ(ParseUnit("Second").code(), Code::kInvalidArgument);
  CatalogItem odd;
  odd.unit = "furlong";
  EXPECT_FALSE(PriceOf(odd).ok());
}

}  // namespace
}  // namespace genledger
