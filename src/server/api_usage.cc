// GET /v1/workspaces/{ws}/usage (docs/api.md, "Usage"): a workspace's usage history grouped by
// user, model, category or day, as JSON or CSV.

#include <charconv>
#include <optional>
#include <string>

#include "server/api.h"
#include "server/api_internal.h"

namespace genledger::server {

namespace {

std::optional<UsageDim> ParseDim(std::string_view s) {
  if (s == "user") return UsageDim::kUser;
  if (s == "model") return UsageDim::kModel;
  if (s == "category") return UsageDim::kCategory;
  if (s == "day") return UsageDim::kDay;
  return std::nullopt;
}

// "user", "model,day", ...: one or two distinct dimensions.
bool ParseGroupBy(std::string_view s, std::vector<UsageDim>& out) {
  const size_t comma = s.find(',');
  const std::optional<UsageDim> a = ParseDim(s.substr(0, comma));
  if (!a) return false;
  out.push_back(*a);
  if (comma == std::string_view::npos) return true;
  const std::optional<UsageDim> b = ParseDim(s.substr(comma + 1));
  if (!b || *b == *a) return false;
  out.push_back(*b);
  return true;
}

bool ParsePeriod(std::string_view s, UsageQuery& q) {
  if (s == "current") {
    q.which = UsageQuery::Which::kCurrent;
    return true;
  }
  if (s == "previous") {
    q.which = UsageQuery::Which::kPrevious;
    return true;
  }
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p != s.data() + s.size() || n == 0 || s[0] == '+') return false;
  q.which = UsageQuery::Which::kNumber;
  q.period = n;
  return true;
}

void AppendMs(std::string& out, uint64_t ms, uint64_t none) {
  if (ms == none) {
    out += "null";
  } else {
    AppendU64(out, ms);
  }
}

void AppendJsonPart(std::string& out, const UsageKeyPart& k) {
  if (k.null) {
    out += "null";
  } else {
    AppendJsonString(out, k.text);
  }
}

// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. Ids cannot hold
// any of them today; model ids come from the catalog, so quote anyway rather than trust that.
void AppendCsvField(std::string& out, std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += s;
    return;
  }
  out.push_back('"');
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

std::string JsonBody(std::string_view ws, const UsageQuery& q, const UsageReport& r) {
  std::string out = "{\"workspace\":";
  AppendJsonString(out, ws);
  out += ",\"period\":";
  AppendU64(out, r.period);
  out += ",\"period_start\":";
  AppendMs(out, r.period_start_ms, 0);
  out += ",\"period_end\":";
  AppendMs(out, r.period_end_ms, UINT64_MAX);
  out += ",\"group_by\":[";
  for (size_t i = 0; i < q.group_by.size(); ++i) {
    if (i) out.push_back(',');
    AppendJsonString(out, UsageDimName(q.group_by[i]));
  }
  out += "],\"rows\":[";
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const UsageReportRow& row = r.rows[i];
    out += i ? ",{" : "{";
    for (size_t d = 0; d < q.group_by.size(); ++d) {
      AppendJsonString(out, UsageDimName(q.group_by[d]));
      out.push_back(':');
      AppendJsonPart(out, row.key[d]);
      out.push_back(',');
    }
    out += "\"used\":";
    AppendU64(out, row.used);
    out += ",\"charges\":";
    AppendU64(out, row.charges);
    out.push_back('}');
  }
  out += "],\"total\":{\"used\":";
  AppendU64(out, r.used);
  out += ",\"charges\":";
  AppendU64(out, r.charges);
  out += "}}";
  return out;
}

// Header row, then one line per row; a null key is an empty field. CRLF line ends (RFC 4180).
std::string CsvBody(const UsageQuery& q, const UsageReport& r) {
  std::string out;
  for (UsageDim d : q.group_by) {
    out += UsageDimName(d);
    out.push_back(',');
  }
  out += "used,charges\r\n";
  for (const UsageReportRow& row : r.rows) {
    for (const UsageKeyPart& k : row.key) {
      if (!k.null) AppendCsvField(out, k.text);
      out.push_back(',');
    }
    AppendU64(out, row.used);
    out.push_back(',');
    AppendU64(out, row.charges);
    out += "\r\n";
  }
  return out;
}

}  // namespace

void Api::HandleUsage(const Call& c, HttpReply& out) {
  std::optional<std::string> period, group_by, format;
  if (!FindQueryParam(c.query, "period", &period) || !FindQueryParam(c.query, "group_by", &group_by) ||
      !FindQueryParam(c.query, "format", &format)) {
    return SetError(out, 400, "invalid_argument", "malformed %-escape in the query string");
  }
  UsageQuery q;
  if (period && !ParsePeriod(*period, q)) {
    return SetError(out, 400, "invalid_argument",
                    "period must be \"current\", \"previous\" or a period number (1, 2, ...)");
  }
  if (!group_by || !ParseGroupBy(*group_by, q.group_by)) {
    return SetError(out, 400, "invalid_argument",
                    "group_by must be one of user, model, category, day, or two of them joined by a comma");
  }
  const bool csv = format && *format == "csv";
  if (format && !csv && *format != "json") {
    return SetError(out, 400, "invalid_argument", "format must be \"json\" or \"csv\"");
  }
  Result<UsageReport> r = ledger_->GetUsage(c.seg[2], q);
  out.ledger_state = true;
  if (!r.ok()) {
    if (r.status().code() == Code::kNotFound) {
      return SetError(out, 404, "unknown_period", std::string(r.status().message()));
    }
    return SetError(out, WireError::FromStatus(r.status()));
  }
  out.status = 200;
  if (csv) {
    out.content_type = "text/csv; charset=utf-8";
    out.body = CsvBody(q, *r);
  } else {
    out.body = JsonBody(c.seg[2], q, *r);
  }
}

}  // namespace genledger::server
