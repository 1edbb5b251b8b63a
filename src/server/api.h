// The API's request handling, independent of sockets: routes an HTTP request (method, target,
// Authorization, body) or a WebSocket text frame to the ledger and encodes the reply.
// Thread-safe; called concurrently from every I/O thread.
#pragma once

#include <cstdint>
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
};

// Which listener a request arrived on: the API's, or --metrics-listen's (only /healthz and
// /metrics there; the API's listener then has no /metrics).
enum class Listener : uint8_t { kApi, kApiAndMetrics, kMetrics };

struct HttpReply {
  int status = 200;
  std::string body;
  std::string_view content_type = "application/json";
  std::string_view allow;          // 405: the Allow header
  bool www_authenticate = false;   // 401: send WWW-Authenticate: Bearer
  // True when the reply was derived from ledger state: it acknowledges a change, or refuses one
  // because of the state, or reads it. The durability hook: such a reply may only be sent once
  // everything it observed is durable (Durability::Ticket() taken after the handler returned),
  // or a client could be told something the ledger forgets in a crash.
  bool ledger_state = false;
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
  // run gate ops; otherwise fills `out` with the HTTP error to answer instead.
  bool AuthorizeWebSocket(std::string_view authorization, HttpReply& out);

  // One WebSocket text frame (an op object or an array of them) -> the reply frame, appended
  // to `out`. Returns true when some op reached the ledger (see HttpReply::ledger_state).
  bool HandleFrame(std::string_view text, std::string& out);

  // Origins and /metrics access. Set before serving.
  void SetAccessPolicy(AccessPolicy p) { policy_ = std::move(p); }
  // /healthz answers 503 "degraded" once the WAL round in flight is older than this (a hung
  // fdatasync). Set before serving.
  void SetHealthUnsyncedMs(uint64_t ms) noexcept { health_unsynced_ms_ = ms; }

  // Optional (not owned, must outlive the Api): /healthz then reports the WAL's state (503 when
  // it has failed) and /metrics its group-commit and snapshot statistics. Set before serving.
  void SetDurability(Durability* d) noexcept { durability_ = d; }

  Ledger& ledger() noexcept { return *ledger_; }
  Metrics& metrics() noexcept { return *metrics_; }
  Auth& auth() noexcept { return *auth_; }

 private:
  // Runs one op; on success appends its result members to `fields` and returns an ok error.
  // `observed` is set when the op reached the ledger (HttpReply::ledger_state).
  WireError Execute(OpKind kind, const OpRequest& r, bool in_frame, std::string& fields,
                    bool& observed);
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
  bool RunOps(const std::vector<OpRequest>& ops, std::string& out);
  // `{"status":N,("seq":S,)?` and counts the op in the metrics.
  void AppendResultPrefix(const OpRequest& r, int status, std::string& out);
  // Appends `{"status":..,("seq":..,)? fields | "error":{..}}` for a batch/frame op.
  bool AppendOpResult(const OpRequest& r, std::string& out);
  void Batch(std::string_view body, HttpReply& out);
  void Health(HttpReply& out);
  // True when `authorization` may read /metrics; otherwise fills `out` with 401.
  bool MetricsAllowed(std::string_view authorization, HttpReply& out);

  // The route table (api.cc, Api::Routes): every HTTP route with its method, path pattern,
  // listener, minimum role and handler, so who may call what is in one place.
  struct Call;
  struct Route;
  static std::span<const Route> Routes();
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
  void HandleVoidGrant(const Call& c, HttpReply& out);
  void HandleUsage(const Call& c, HttpReply& out);   // api_usage.cc

  std::shared_ptr<Ledger> ledger_;
  std::shared_ptr<Auth> auth_;
  std::shared_ptr<Metrics> metrics_;
  ApiLimits limits_;
  Durability* durability_ = nullptr;
  AccessPolicy policy_;
  uint64_t health_unsynced_ms_ = 5000;
  // Tells this Api's per-thread catalog copies from another Api's (tests run several per thread).
  const uint64_t id_;
};

}  // namespace genledger::server
