// auth_results.cpp - Authentication-Results formatting and reading (RFC 8601)
#include "dmarc/core/auth_results.hpp"

#include <algorithm>

namespace dmarc {

namespace {
// RFC 2045 5.1: token := 1*<any (US-ASCII) CHAR except SPACE, CTLs, or tspecials>
bool is_token_char(unsigned char c) {
  if (c <= 0x20 || c >= 0x7f) return false;
  switch (c) {
    case '(': case ')': case '<': case '>': case '@': case ',': case ';': case ':':
    case '\\': case '"': case '/': case '[': case ']': case '?': case '=':
      return false;
    default:
      return true;
  }
}
// RFC 5322 3.2.3 atext, plus '.' for dot-atoms.
bool is_atext_or_dot(unsigned char c) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (c >= '0' && c <= '9') return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~.").find(static_cast<char>(c)) != std::string_view::npos;
}
bool printable(unsigned char c) { return c >= 0x20 && c < 0x7f; }

// Printable ASCII only, capped: the single place where untrusted text is
// made safe for a header (RFC 5322 2.2: no CR or LF inside a field body).
std::string sanitize(std::string_view v) {
  std::string out;
  out.reserve(std::min(v.size(), kMaxValueLength));
  for (unsigned char c : v) {
    if (out.size() >= kMaxValueLength) break;
    out += printable(c) ? static_cast<char>(c) : '?';
  }
  return out;
}

std::string quote(std::string_view v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

bool all_of(std::string_view v, bool (*pred)(unsigned char)) {
  for (unsigned char c : v) {
    if (!pred(c)) return false;
  }
  return true;
}
}  // namespace

std::string ar_value(std::string_view value) {
  std::string v = sanitize(value);
  if (!v.empty() && all_of(v, is_token_char)) return v;
  return quote(v);
}

std::string ar_pvalue(std::string_view value) {
  std::string v = sanitize(value);
  // pvalue = [CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS]
  std::size_t at = v.rfind('@');
  std::string_view local = at == std::string::npos ? std::string_view{} : std::string_view(v).substr(0, at);
  std::string_view domain = at == std::string::npos ? std::string_view(v) : std::string_view(v).substr(at + 1);
  bool domain_ok = !domain.empty() && domain.front() != '.' && domain.back() != '.' &&
                   domain.find("..") == std::string_view::npos &&
                   all_of(domain, [](unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'; });
  bool local_ok = local.empty() || (local.front() != '.' && local.back() != '.' &&
                                    local.find("..") == std::string_view::npos && all_of(local, is_atext_or_dot));
  if (domain_ok && local_ok) return v;
  return ar_value(v);
}

std::string ar_comment(std::string_view text) {
  std::string out = "(";
  for (char c : sanitize(text)) {
    if (c == '(' || c == ')' || c == '\\') out += '\\';
    out += c;
  }
  return out + ")";
}

std::string format_auth_results(const AuthResultsFields& f, bool crlf) {
  const std::string fold = crlf ? "\r\n\t" : "\n\t";
  std::string out = " " + ar_value(f.authserv_id);
  std::vector<std::string> methods;
  if (f.spf) {
    std::string m = "spf=" + std::string(to_token(f.spf->result));
    if (!f.spf->comment.empty()) m += " " + ar_comment(f.spf->comment);
    m += f.spf->scope == SpfScope::Helo ? " smtp.helo=" : " smtp.mailfrom=";
    m += ar_pvalue(f.spf->identity);
    methods.push_back(std::move(m));
  }
  if (f.dkim_checked && f.dkim.empty()) methods.emplace_back("dkim=none");
  for (const auto& d : f.dkim) {
    std::string m = "dkim=" + std::string(to_token(d.result));
    if (!d.comment.empty()) m += " " + ar_comment(d.comment);
    if (!d.domain.empty()) m += " header.d=" + ar_pvalue(d.domain);
    if (!d.selector.empty()) m += " header.s=" + ar_value(d.selector);
    if (!d.b_prefix.empty()) m += " header.b=" + ar_value(d.b_prefix);
    methods.push_back(std::move(m));
  }
  for (const auto& d : f.dmarc) {
    std::string m = "dmarc=" + std::string(to_token(d.result));
    if (!d.comment.empty()) m += " " + ar_comment(d.comment);
    if (!d.header_from.empty()) m += " header.from=" + ar_pvalue(d.header_from);
    if (!d.policy.empty()) m += " policy.dmarc=" + ar_value(d.policy);
    methods.push_back(std::move(m));
  }
  if (methods.empty()) return out + "; none";  // RFC 8601 2.2: no-result
  for (const auto& m : methods) out += ";" + fold + m;
  return out;
}

std::optional<std::string> authserv_id_of(std::string_view s) {
  std::size_t i = 0;
  // Skip CFWS: whitespace, folding and (nested) comments (RFC 5322 3.2.2).
  auto skip_cfws = [&]() -> bool {
    for (;;) {
      while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
      if (i < s.size() && s[i] == '(') {
        int depth = 0;
        for (; i < s.size(); ++i) {
          if (s[i] == '\\') { ++i; continue; }
          if (s[i] == '(') ++depth;
          else if (s[i] == ')' && --depth == 0) { ++i; break; }
        }
        if (depth != 0) return false;
        continue;
      }
      return true;
    }
  };
  if (!skip_cfws() || i >= s.size()) return std::nullopt;
  std::string id;
  if (s[i] == '"') {
    for (++i; i < s.size() && s[i] != '"'; ++i) {
      if (s[i] == '\\' && i + 1 < s.size()) ++i;
      id += s[i];
    }
    if (i >= s.size()) return std::nullopt;
  } else {
    while (i < s.size() && is_token_char(static_cast<unsigned char>(s[i]))) id += s[i++];
  }
  if (id.empty()) return std::nullopt;
  return id;
}

}  // namespace dmarc
