// The default catalog, transcribed from the seed pricing page (docs/pricing.md explains the
// schema, the region interpretation and the aliases). Replace it at run time with --catalog FILE.
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "genledger/catalog.h"

namespace genledger {
namespace {

// Every item the seed lists is available in both regions except the ones the seed marks
// "(China only)"; that suffix is dropped from the display name because `regions` carries it.
// Rates are strings so they stay exact decimals.
constexpr std::string_view kDefaultCatalogJson = R"json({"items":[
  {"id":"openai-o3","name":"Open AI o3","category":"text","unit":"message","rate":"1","regions":["global","cn"],"aliases":["o3"]},
  {"id":"openai-o3-mini","name":"Open AI o3 mini","category":"text","unit":"message","rate":"1","regions":["global","cn"],"aliases":["o3-mini"]},
  {"id":"openai-o4-mini","name":"Open AI o4 mini","category":"text","unit":"message","rate":"1","regions":["global","cn"],"aliases":["o4-mini"]},
  {"id":"openai-gpt-4o","name":"Open AI GPT-4o","category":"text","unit":"message","rate":"1","regions":["global","cn"],"aliases":["gpt-4o"]},
  {"id":"openai-gpt-4.1","name":"Open AI GPT-4.1","category":"text","unit":"message","rate":"1","regions":["global","cn"],"aliases":["gpt-4.1"]},
  {"id":"openai-gpt-5-nano","name":"Open AI GPT-5 Nano","category":"text","unit":"message","rate":"1","regions":["global","cn"],"aliases":["gpt-5-nano"]},
  {"id":"openai-gpt-5-mini","name":"Open AI GPT-5 Mini","category":"text","unit":"message","rate":"1","regions":["global","cn"],"aliases":["gpt-5-mini"]},
  {"id":"openai-gpt-5","name":"Open AI GPT-5","category":"text","unit":"message","rate":"1","regions":["global","cn"],"aliases":["gpt-5"]},
  {"id":"google-gemini-2.0-flash","name":"Google Gemini 2.0 Flash","category":"text","unit":"message","rate":"1","regions":["global","cn"],"aliases":["gemini-2.0-flash"]},
  {"id":"google-gemini-2.5-flash","name":"Google Gemini 2.5 Flash","category":"text","unit":"message","rate":"1","regions":["global","cn"],"aliases":["gemini-2.5-flash"]},
  {"id":"google-gemini-2.5-pro","name":"Google Gemini 2.5 Pro","category":"text","unit":"message","rate":"1","regions":["global","cn"],"aliases":["gemini-2.5-pro"]},

  {"id":"stable-diffusion-3.5-large","name":"Stable Diffusion 3.5 Large","category":"image","unit":"image","rate":"1","regions":["global","cn"],"aliases":["sd3.5-large"]},
  {"id":"stable-diffusion","name":"Stable Diffusion","category":"image","unit":"image","rate":"1","regions":["global","cn"],"aliases":[]},
  {"id":"openai-gpt-image-1","name":"Open AI GPT Image 1","category":"image","unit":"image","rate":"1","regions":["global","cn"],"aliases":["gpt-image-1"]},
  {"id":"openai-dall-e-3","name":"Open AI Dall-E 3","category":"image","unit":"image","rate":"1","regions":["global","cn"],"aliases":["dall-e-3"]},
  {"id":"nano-banana-gemini-2.5-flash-image","name":"Nano Banana: Gemini 2.5 Flash Image","category":"image","unit":"image","rate":"1","regions":["global","cn"],"aliases":["nano-banana","gemini-2.5-flash-image","gemini-2.5-flash-image-preview"]},
  {"id":"google-imagen-4-ultra","name":"Google Imagen 4 Ultra","category":"image","unit":"image","rate":"1","regions":["global","cn"],"aliases":["imagen-4.0-ultra-generate-001"]},
  {"id":"google-imagen-3","name":"Google Imagen 3","category":"image","unit":"image","rate":"1","regions":["global","cn"],"aliases":["imagen-3.0-generate-001","imagen-3.0-generate-002"]},
  {"id":"getty-images","name":"Getty Images","category":"image","unit":"image","rate":"1","regions":["global","cn"],"aliases":[]},
  {"id":"bria-3.2","name":"Bria 3.2","category":"image","unit":"image","rate":"1","regions":["global","cn"],"aliases":[]},
  {"id":"adobe-firefly-v4-standard","name":"Adobe Firefly V4 Standard","category":"image","unit":"image","rate":"1","regions":["global","cn"],"aliases":[]},
  {"id":"kling-ai-image-2","name":"Kling AI Image 2","category":"image","unit":"image","rate":"1","regions":["cn"],"aliases":[]},
  {"id":"kling-ai-image-2.1","name":"Kling AI Image 2.1","category":"image","unit":"image","rate":"1","regions":["cn"],"aliases":[]},

  {"id":"runway-gen3-alpha-turbo","name":"Runway Gen3 Alpha Turbo","category":"video","unit":"second","rate":"0.33","regions":["global","cn"],"aliases":["gen3a_turbo"]},
  {"id":"runway-gen4-alpha-turbo","name":"Runway Gen4 Alpha Turbo","category":"video","unit":"second","rate":"0.33","regions":["global","cn"],"aliases":["gen4_turbo"]},
  {"id":"google-veo2","name":"Google Veo2","category":"video","unit":"second","rate":"3","regions":["global","cn"],"aliases":["veo-2","veo-2.0-generate-001"]},
  {"id":"google-veo3","name":"Google Veo3","category":"video","unit":"second","rate":"2","regions":["global","cn"],"aliases":["veo-3","veo-3.0-generate-001"]},
  {"id":"google-veo3.1","name":"Google Veo3.1","category":"video","unit":"second","rate":"2","regions":["global","cn"],"aliases":["veo-3.1","veo-3.1-generate-preview"]},
  {"id":"adobe-video1-standard","name":"Adobe Video1 Standard","category":"video","unit":"second","rate":"4","regions":["global","cn"],"aliases":[]},
  {"id":"sora-2","name":"Sora 2","category":"video","unit":"second","rate":"1","regions":["global","cn"],"aliases":["openai-sora-2"]},
  {"id":"sora-2-pro","name":"Sora 2 Pro","category":"video","unit":"second","rate":"3","regions":["global","cn"],"aliases":["openai-sora-2-pro"]},
  {"id":"kling-ai-video-2.1","name":"Kling AI Video 2.1","category":"video","unit":"second","rate":"2","regions":["cn"],"aliases":[]},
  {"id":"kling-ai-video-2.5","name":"Kling AI Video 2.5","category":"video","unit":"second","rate":"2","regions":["cn"],"aliases":[]},

  {"id":"google-chirp-3-hd","name":"Google Chirp 3 HD","category":"voiceover","unit":"audio","rate":"1","regions":["global","cn"],"aliases":["chirp-3-hd","chirp3-hd"]},
  {"id":"google-gemini-2.5-tts-pro","name":"Google Gemini 2.5 TTS Pro","category":"voiceover","unit":"audio","rate":"1","regions":["global","cn"],"aliases":["gemini-2.5-pro-tts","gemini-2.5-pro-preview-tts"]},

  {"id":"feed-variation","name":"Feed Variations","category":"feed","unit":"variation","rate":"1","regions":["global","cn"],"aliases":[]},
  {"id":"feed-ai-tool","name":"AI Tools inside feeds","category":"feed","unit":"cell","rate":"1","regions":["global","cn"],"aliases":[]},

  {"id":"image-edit","name":"Post generation edit","category":"action","unit":"edit","rate":"1","regions":["global","cn"],"aliases":[]}
]})json";

}  // namespace

std::shared_ptr<const Catalog> Catalog::Default() {
  // Parsed once; the embedded text is covered by catalog_test, so a failure here is a build
  // defect and there is no sensible catalog to fall back to.
  static const std::shared_ptr<const Catalog> catalog = [] {
    Result<std::shared_ptr<const Catalog>> parsed = FromJson(kDefaultCatalogJson);
    if (!parsed.ok()) {
      std::fprintf(stderr, "genledger: embedded default catalog is invalid: %s\n",
                   parsed.status().ToString().c_str());
      std::abort();
    }
    return std::move(parsed).value();
  }();
  return catalog;
}

}  // namespace genledger
