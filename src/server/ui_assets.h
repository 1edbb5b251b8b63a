// The dashboard's files (ui/), embedded in the binary at build time by cmake/embed_ui.cmake, so
// genledger serves /ui/ with no file beside it (docs/dashboard.md).
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace genledger::server {

struct UiAsset {
  std::string_view name;           // "index.html", "app.js": ui/'s file name, no directory
  std::string_view content_type;   // from the extension, e.g. "text/javascript; charset=utf-8"
  std::string_view etag;           // quoted, from the content's SHA-256: "\"3fa9...\""
  const unsigned char* data;
  size_t size;
};

// Every embedded asset, sorted by name (the generated ui_assets_data.cc).
std::span<const UiAsset> UiAssets();

// The asset called `name`, or nullptr.
inline const UiAsset* FindUiAsset(std::string_view name) {
  for (const UiAsset& a : UiAssets())
    if (a.name == name) return &a;
  return nullptr;
}

}  // namespace genledger::server
