// genledger-load: synchronous HTTP (sync_http.h).
#include "load/sync_http.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace genledger::load {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

SyncReply SyncHttp(const Target& t, http::verb verb, const std::string& target,
                   const std::string& body, const std::string& token) {
  SyncReply out;
  try {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(resolver.resolve(t.host, t.port));
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, t.host + ":" + t.port);
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    if (verb != http::verb::get) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    out.status = int(res.result_int());
    out.body = std::move(res.body());
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  } catch (const boost::system::system_error& e) {
    out.status = 0;
    out.body = e.code().message();
  } catch (const std::exception& e) {
    out.status = 0;
    out.body = e.what();
  }
  return out;
}

bool ReadWorkspace(const Target& t, const std::string& ws, const std::string& token,
                   WorkspaceTotals& s, std::string& err) {
  SyncReply r = SyncHttp(t, http::verb::get, "/v1/workspaces/" + ws, "", token);
  if (r.status != 200) {
    err = "GET /v1/workspaces/" + ws + ": " +
          (r.status ? "HTTP " + std::to_string(r.status) + " " + r.body : r.body);
    return false;
  }
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object()) {
    err = "GET /v1/workspaces/" + ws + ": unparsable reply " + r.body;
    return false;
  }
  auto& o = v.as_object();
  auto get = [&](const char* k, int64_t& out) {
    auto* p = o.if_contains(k);
    if (!p || !p->is_number()) return false;
    if (p->is_int64()) out = p->as_int64();
    else if (p->is_uint64()) out = int64_t(p->as_uint64());
    else return false;
    return true;
  };
  if (!get("used", s.used) || !get("reserved", s.reserved)) {
    err = "GET /v1/workspaces/" + ws + ": no used/reserved in " + r.body;
    return false;
  }
  return true;
}

}  // namespace genledger::load
