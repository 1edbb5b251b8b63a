// The API's request handling, independent of sockets: routes an HTTP request (method, target,
// Authorization, body) or a WebSocket text frame to the ledger and encodes the reply.
// Thread-safe; called concurrently from every I/O thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "genledger/durability.h"
#include "genledger/ledger.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/protocol.h"

namespace genledger::webhook {
class Service;
}

namespace genledger::server {

struct ApiLimits {
  size_t max_batch_ops = 1000;   // ops per /v1/batch body or WebSocket frame
};

// Who may call what besides the bearer-token roles (docs/api.md, "Origins" and "Metrics").
struct AccessPolicy {
  // Origins (scheme://host[:port], compared case-insensitively) a request carrying an `Origin`
  // header may come from: the server's own origins plus every --allow-origin. Any other Origin
  // is refused with 403 forbidden_origin before anything else is looked at.
  std::vector<std::string> origins;
  // When true, GET /metrics needs `Bearer <metrics_token>` (if set) or any token with a role.
  bool metrics_need_token = false;
  std::string metrics_token;
  // The --allow-origin origins only: the ones CORS answers are given to (docs/api.md, "CORS").
  // The server's own origins need none (their pages are same-origin).
  std::vector<std::string> cors_origins;
};

// Which listener a request arrived on: the API's, or --metrics-listen's (only /healthz and
// /metrics there; the API's listener then has no /metrics).
enum class Listener : uint8_t { kApi, kApiAndMetrics, kMetrics };

// The dashboard's Content-Security-Policy (HttpReply::page): its own files only, no inline script
// or style, data only from this origin, never framed (docs/dashboard.md).
inline constexpr std::string_view kPageCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

struct HttpReply {
  int status = 200;
  std::string body;
  std::string_view content_type = "application/json";
  std::string_view allow;          // 405: the Allow header
  bool www_authenticate = false;   // 401: send WWW-Authenticate: Bearer
  // CORS (Api::CorsOrigin, Api::HandlePreflight): when set, the reply carries
  // Access-Control-Allow-Origin with this origin and Vary: Origin; `preflight` adds the
  // Access-Control-Allow-Methods/-Headers/-Max-Age of a preflight answer.
  std::string cors_origin;
  bool preflight = false;
  // The dashboard's files (api_ui.cc): Cache-Control, ETag (the session answers 304 when the
  // request's If-None-Match is this), a redirect's Location, and `page` for the browser
  // hardening headers (Content-Security-Policy, X-Content-Type-Options, Referrer-Policy).
  std::string_view cache_control;
  std::string_view etag;
  std::string location;
  bool page = false;
  // True when the reply was derived from ledger state: it acknowledges a change, or refuses one
  // because of the state, or reads it. The durability hook: such a reply may only be sent once
  // everything it observed is durable (Durability::Ticket() taken after the handler returned),
  // or a client could be told something the ledger forgets in a crash.
  bool ledger_state = false;
  // GET /v1/workspaces/{ws}/events: non-empty, the workspace whose Server-Sent Events stream the
  // session must start on this connection instead of sending `body` (sse_session.cc).
  std::string event_stream;
};

// The frame ops about the connection itself (subscribe, unsubscribe), which only a WebSocket
// session can run: it passes itself to Api::HandleFrame. Each appends its result members
// (`"subscribed":..,"state":{..}`) to `fields` or returns the error.
class FrameStreams {
 public:
  virtual WireError Subscribe(std::string_view workspace, std::string& fields) = 0;
  virtual WireError Unsubscribe(std::string_view workspace, std::string& fields) = 0;

 protected:
  ~FrameStreams() = default;
};

class Api {
 public:
  Api(std::shared_ptr<Ledger> ledger, std::shared_ptr<Auth> auth,
      std::shared_ptr<Metrics> metrics, ApiLimits limits);

  // Handles one HTTP request. `out` is overwritten. `listener` selects the routes served.
  void HandleHttp(std::string_view method, std::string_view target,
                  std::string_view authorization, std::string_view body, HttpReply& out,
                  Listener listener = Listener::kApiAndMetrics);

  // Cross-site request forgery guard, checked before anything else for every HTTP request and
  // WebSocket upgrade: true when the request carries no Origin header or an allowed one;
  // otherwise fills `out` with 403 forbidden_origin. Thread-safe.
  bool CheckOrigin(std::optional<std::string_view> origin, HttpReply& out);

  // Checks a WebSocket upgrade request for GET /v1/ws: ok (returns true) when the caller may
  // run gate ops, and *grant (optional) receives what the token grants (its scope is checked
  // per op of every frame: pass it to HandleFrame); otherwise fills `out` with the HTTP error
  // to answer instead.
  bool AuthorizeWebSocket(std::string_view authorization, HttpReply& out, Grant* grant = nullptr);

  // One WebSocket text frame (an op object or an array of them) -> the reply frame, appended
  // to `out`. Returns true when some op reached the ledger (see HttpReply::ledger_state).
  // `grant` (null: unscoped) limits the ops to its workspaces: any other op's result is 403.
  // `streams` runs subscribe/unsubscribe ops (null: they fail with 400 invalid_argument).
  bool HandleFrame(std::string_view text, std::string& out, const Grant* grant = nullptr,
                   FrameStreams* streams = nullptr);

  // --- For the SSE route GET /v1/workspaces/{ws}/events (docs/api.md, "Tokens") ---
  // Authorizes a request for the event stream of the workspace its `target` names: the bearer
  // token of `authorization`, or when that is empty the `token` query parameter (a browser's
  // EventSource cannot send headers; accepted on this route only, and never logged). True, and
  // `grant` filled, for a read role or better whose scope holds the workspace; otherwise false
  // with `out` filled (401 no or bad token, 403 role or scope, 404 not an events target).
  bool AuthorizeEvents(std::string_view authorization, std::string_view target, Grant& grant, HttpReply& out);
  // The `token` query parameter's value in a request target's query ("a=1&token=glt_..."), or
  // empty. Only the SSE route may use it (HandleHttp answers 401 elsewhere).
  static std::string_view QueryToken(std::string_view query) noexcept;

  // --- CORS (docs/api.md, "CORS") ---
  // The Access-Control-Allow-Origin value for a request with `origin` and `method`: the origin
  // itself when it is an --allow-origin one and the method GET or HEAD (SSE included), else
  // empty. Session code sets HttpReply::cors_origin from it.
  std::string CorsOrigin(std::optional<std::string_view> origin, std::string_view method) const;
  // A CORS preflight: OPTIONS with an Origin and Access-Control-Request-Method. Returns false
  // (nothing filled) for any other request; else fills `out`: 204 with the preflight headers for
  // an --allow-origin origin, 403 forbidden_origin for another (CheckOrigin normally refused it
  // already).
  bool HandlePreflight(std::string_view method, std::optional<std::string_view> origin,
                       std::optional<std::string_view> request_method, HttpReply& out);

  // Called (on the request's thread) after a minted token was revoked, so that the server
  // re-checks every open session's token and closes the ones it no longer authorizes
  // (Server::Start sets it: SessionBase::OnAuthReload on every session). Set before serving.
  void SetOnTokenRevoked(std::function<void()> f) { on_token_revoked_ = std::move(f); }

  // Every route of the route table as "METHOD PATTERN" (genledger --routes; the OpenAPI test
  // compares them with docs/openapi.yaml's paths).
  static std::vector<std::string> RouteList();

  // Origins and /metrics access. Set before serving.
  void SetAccessPolicy(AccessPolicy p) { policy_ = std::move(p); }
  // /healthz answers 503 "degraded" once the WAL round in flight is older than this (a hung
  // fdatasync). Set before serving.
  void SetHealthUnsyncedMs(uint64_t ms) noexcept { health_unsynced_ms_ = ms; }

  // Optional (not owned, must outlive the Api): /healthz then reports the WAL's state (503 when
  // it has failed) and /metrics its group-commit and snapshot statistics. Set before serving.
  void SetDurability(Durability* d) noexcept { durability_ = d; }
  // Optional (not owned, must outlive the Api): the /v1/webhooks routes (api_webhooks.cc) and
  // the webhook lines of /metrics; without it those routes answer 503. Set before serving.
  void SetWebhooks(webhook::Service* w) noexcept { webhooks_ = w; }

  Ledger& ledger() noexcept { return *ledger_; }
  Metrics& metrics() noexcept { return *metrics_; }
  Auth& auth() noexcept { return *auth_; }

 private:
  // Runs one op; on success appends its result members to `fields` and returns an ok error.
  // `observed` is set when the op reached the ledger (HttpReply::ledger_state).
  WireError Execute(OpKind kind, const OpRequest& r, bool in_frame, std::string& fields,
                    bool& observed, const Grant& grant);
  // The per-op check of a grant: 403 forbidden when its role is read and the op is not
  // subscribe/unsubscribe, or when the grant is scoped and the op's workspace (named, or that of
  // its reservation or charge) is not one of its. Unscoped grants pass without a lookup.
  WireError CheckOpScope(OpKind kind, const OpRequest& r, const Grant& grant) const;
  // Checks the model and fills a ChargeRequest (pointing into `r`) for charge/quote/reserve.
  // The item comes from the calling thread's catalog (TakeCatalog).
  WireError PrepareCharge(const OpRequest& r, ChargeRequest& c);
  // Makes the calling thread's copy of the ledger's catalog current, at the start of an HTTP
  // request or a WebSocket frame: one atomic load while the version is unchanged, a copy of the
  // ledger's shared_ptr (a short mutex) when it changed. The copy keeps every item a request
  // resolved alive until the request is done, however the catalog is replaced meanwhile, and no
  // request takes a lock for it (docs/ledger.md, "The catalog changes while running").
  void TakeCatalog();
  // Runs batch/frame ops in order, appending comma-separated results; runs of consecutive
  // well-formed charges go through Ledger::ChargeBatch. Returns true if any op reached the
  // ledger.
  bool RunOps(const std::vector<OpRequest>& ops, std::string& out, const Grant& grant);
  // `{"status":N,("seq":S,)?` and counts the op in the metrics.
  void AppendResultPrefix(const OpRequest& r, int status, std::string& out);
  // Appends `{"status":..,("seq":..,)? fields | "error":{..}}` for a batch/frame op.
  bool AppendOpResult(const OpRequest& r, std::string& out, const Grant& grant);
  void Batch(std::string_view body, HttpReply& out, const Grant& grant);
  void Health(HttpReply& out);
  // True when `authorization` may read /metrics; otherwise fills `out` with 401.
  bool MetricsAllowed(std::string_view authorization, HttpReply& out);

  // The route table (api.cc, Api::Routes): every HTTP route with its method, path pattern,
  // listener, minimum role and handler, so who may call what is in one place.
  struct Call;
  struct Route;
  static std::span<const Route> Routes();
  // What a scoped token may reach of a route (api.cc): 403 forbidden, or ok.
  WireError CheckRouteScope(const Route& r, const Call& c);
  // Route handlers: each answers one route of the table, after HandleHttp checked the token,
  // the role and the WAL. Every handler that reads or changes ledger state sets ledger_state.
  void HandleHealth(const Call& c, HttpReply& out);
  void HandleMetrics(const Call& c, HttpReply& out);
  void HandleCatalog(const Call& c, HttpReply& out);
  void HandlePutCatalog(const Call& c, HttpReply& out);
  void HandleWsWithoutUpgrade(const Call& c, HttpReply& out);
  void HandleOp(const Call& c, HttpReply& out);
  void HandleBatch(const Call& c, HttpReply& out);
  void HandleGetWorkspace(const Call& c, HttpReply& out);
  void HandlePutWorkspace(const Call& c, HttpReply& out);
  void HandleListUsers(const Call& c, HttpReply& out);
  void HandleListWorkspaces(const Call& c, HttpReply& out);
  void HandlePutUser(const Call& c, HttpReply& out);
  void HandleTopUp(const Call& c, HttpReply& out);
  void HandleReset(const Call& c, HttpReply& out);
  // Grants (api_plan.cc).
  void HandleListGrants(const Call& c, HttpReply& out);
  void HandleAddGrant(const Call& c, HttpReply& out);
  // Webhooks (api_webhooks.cc; docs/webhooks.md).
  void HandleAddWebhook(const Call& c, HttpReply& out);
  void HandleListWebhooks(const Call& c, HttpReply& out);
  void HandleDeleteWebhook(const Call& c, HttpReply& out);
  void HandleWebhookDeliveries(const Call& c, HttpReply& out);
  void HandleVoidGrant(const Call& c, HttpReply& out);
  // Minted tokens (api_tokens.cc).
  void HandleAddToken(const Call& c, HttpReply& out);
  void HandleListTokens(const Call& c, HttpReply& out);
  void HandleRevokeToken(const Call& c, HttpReply& out);
  // GET /v1/workspaces/{ws}/events (the stream itself: sse_session.cc).
  void HandleEvents(const Call& c, HttpReply& out);
  // The dashboard's embedded files (api_ui.cc): /ui redirects to /ui/, /ui/{asset} serves one.
  void HandleUiRedirect(const Call& c, HttpReply& out);
  void HandleUiAsset(const Call& c, HttpReply& out);
  // Alerts (api_events.cc).
  void HandleGetAlerts(const Call& c, HttpReply& out);
  void HandlePutAlerts(const Call& c, HttpReply& out);
  void HandleUsage(const Call& c, HttpReply& out);   // api_usage.cc

  std::shared_ptr<Ledger> ledger_;
  std::shared_ptr<Auth> auth_;
  std::shared_ptr<Metrics> metrics_;
  ApiLimits limits_;
  Durability* durability_ = nullptr;
  webhook::Service* webhooks_ = nullptr;
  AccessPolicy policy_;
  std::function<void()> on_token_revoked_;
  uint64_t health_unsynced_ms_ = 5000;
  // Tells this Api's per-thread catalog copies from another Api's (tests run several per thread).
  const uint64_t id_;
};

}  // namespace genledger::server
