// The dashboard's routes (docs/dashboard.md): the files of ui/, embedded at build time
// (cmake/embed_ui.cmake, server/ui_assets.h), served under /ui/ with the page's hardening
// headers. They hold no data: every figure the page shows comes from a /v1 route it calls with
// the token typed into it, so these routes ask for no token.

#include "server/api.h"
#include "server/api_internal.h"
#include "server/ui_assets.h"

namespace genledger::server {

void Api::HandleUiRedirect(const Call& c, HttpReply& out) {
  // A directory URL, so the page's relative links (app.js, style.css) resolve under /ui/.
  out.status = 308;
  out.location = "/ui/";
  if (!c.query.empty()) {
    out.location += '?';
    out.location += c.query;
  }
  out.content_type = "text/plain; charset=utf-8";
  out.body = "see /ui/\n";
}

void Api::HandleUiAsset(const Call& c, HttpReply& out) {
  const UiAsset* a = FindUiAsset(c.seg[1]);
  if (a == nullptr) return SetError(out, 404, "not_found", "no such dashboard file");
  out.status = 200;
  out.content_type = a->content_type;
  out.body.assign(reinterpret_cast<const char*>(a->data), a->size);
  // Names carry no hash, so the browser asks again each time; the ETag makes that a 304.
  out.cache_control = "no-cache";
  out.etag = a->etag;
  out.page = true;
}

}  // namespace genledger::server
