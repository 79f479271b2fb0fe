// spf_syntax.cpp - RFC 7208 record syntax and the libspf2 rewrite/guard
#include "adapters/spf/spf_syntax.hpp"
#include "dmarc/core/domain.hpp"

#include <arpa/inet.h>

#include <cstddef>
#include <algorithm>
#include <cstdint>

namespace dmarc::spf2 {
namespace {

constexpr std::size_t kMaxDomain = 253;
constexpr std::size_t kMaxLabel = 63;
// libspf2 1.2.10 spf_record.h / spf_internal.h
constexpr std::size_t kLibspf2MaxData = 511;  // SPF_MAX_MECH_LEN, SPF_MAX_MOD_LEN
constexpr std::size_t kLibspf2Align = 4;      // _ALIGN_SZ
constexpr std::size_t kLibspf2BlockHeader = 4;  // sizeof(SPF_data_t)

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

struct MacroScan {
  std::string normalized;
  bool ends_in_expand = false;   // the last item is a macro-expand (RFC 7208 7.1)
  std::size_t tail_literal = 0;  // start (in normalized) of the literal run after the last expand
};

// scan_macro_string - RFC 7208 7.1 macro-string (explain-string, 6.2, when
// EXPLANATION: spaces and the letters c, r, t allowed), normalised for
// expand_macros(): transformer digits without leading zeros, "R" as "r".
Expected<MacroScan, std::string> scan_macro_string(std::string_view s, bool explanation) {
  MacroScan out;
  out.normalized.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '%') {
      if (i + 1 >= s.size()) return Unexpected<std::string>{"'%' at the end of a macro-string (RFC 7208 7.1)"};
      char d = s[i + 1];
      if (d == '%' || d == '_' || d == '-') {
        out.normalized += '%';
        out.normalized += d;
        out.ends_in_expand = true;
        out.tail_literal = out.normalized.size();
        i += 2;
        continue;
      }
      if (d != '{') return Unexpected<std::string>{"'%' not followed by '{', '%', '_' or '-' (RFC 7208 7.1)"};
      std::size_t j = i + 2;
      if (j >= s.size()) return Unexpected<std::string>{"unterminated macro (RFC 7208 7.1)"};
      char letter = s[j];
      char l = lower(letter);
      static constexpr std::string_view kLetters = "slodipvh";
      static constexpr std::string_view kExpLetters = "crt";
      if (kLetters.find(l) == std::string_view::npos) {
        if (kExpLetters.find(l) == std::string_view::npos) {
          return Unexpected<std::string>{std::string("unknown macro letter '") + letter + "' (RFC 7208 7.1)"};
        }
        // RFC 7208 7.3: c, r and t are allowed only in explanation text.
        if (!explanation) {
          return Unexpected<std::string>{std::string("macro letter '") + letter +
                                         "' outside explanation text (RFC 7208 7.3)"};
        }
      }
      ++j;
      std::size_t digits_start = j;
      while (j < s.size() && is_digit(s[j])) ++j;
      std::string digits;
      if (j > digits_start) {
        std::string_view dv = s.substr(digits_start, j - digits_start);
        std::size_t nz = dv.find_first_not_of('0');
        if (nz == std::string_view::npos) {
          return Unexpected<std::string>{"macro transformer digit 0 (RFC 7208 7.3: MUST be nonzero)"};
        }
        dv.remove_prefix(nz);
        // Any count past the number of parts means all parts (7.3); keep
        // the number small enough to parse.
        digits = dv.size() > 6 ? std::string("999999") : std::string(dv);
      }
      bool reverse = false;
      if (j < s.size() && (s[j] == 'r' || s[j] == 'R')) {
        reverse = true;
        ++j;
      }
      std::string delims;
      while (j < s.size() && std::string_view(".-+,/_=").find(s[j]) != std::string_view::npos) {
        delims += s[j];
        ++j;
      }
      if (j >= s.size() || s[j] != '}') return Unexpected<std::string>{"malformed macro (RFC 7208 7.1)"};
      out.normalized += "%{";
      out.normalized += letter;
      out.normalized += digits;
      if (reverse) out.normalized += 'r';
      out.normalized += delims;
      out.normalized += '}';
      out.ends_in_expand = true;
      out.tail_literal = out.normalized.size();
      i = j + 1;
      continue;
    }
    if (c == ' ') {
      if (!explanation) return Unexpected<std::string>{"space in a macro-string"};
      out.normalized += ' ';
      out.ends_in_expand = false;
      ++i;
      continue;
    }
    auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e) {
      return Unexpected<std::string>{"byte outside visible US-ASCII (RFC 7208 7.1 macro-literal)"};
    }
    out.normalized += c;
    out.ends_in_expand = false;
    ++i;
  }
  return out;
}

// valid_toplabel - RFC 7208 7.1 toplabel: LDH, not all-numeric, no dash at
// either end.
bool valid_toplabel(std::string_view t) {
  if (t.empty() || !is_alnum(t.front()) || !is_alnum(t.back())) return false;
  bool alpha = false, dash = false;
  for (char c : t) {
    if (is_alpha(c)) alpha = true;
    else if (c == '-') dash = true;
    else if (!is_digit(c)) return false;
  }
  return alpha || dash;
}

// domain_spec - RFC 7208 7.1: domain-spec = macro-string domain-end,
// domain-end = ( "." toplabel [ "." ] ) / macro-expand.
Expected<std::string, std::string> domain_spec(std::string_view s) {
  if (s.empty()) return Unexpected<std::string>{"empty domain-spec"};
  auto scan = scan_macro_string(s, false);
  if (!scan) return Unexpected<std::string>{scan.error()};
  if (scan->ends_in_expand) return scan->normalized;
  std::string_view tail(scan->normalized);
  tail.remove_prefix(scan->tail_literal);
  if (!tail.empty() && tail.back() == '.') tail.remove_suffix(1);
  std::size_t dot = tail.rfind('.');
  if (dot == std::string_view::npos || !valid_toplabel(tail.substr(dot + 1))) {
    return Unexpected<std::string>{"domain-spec \"" + std::string(s.substr(0, 64)) +
                                   "\" does not end in a valid top label or macro (RFC 7208 7.1)"};
  }
  return scan->normalized;
}

// cidr_length - RFC 7208 5.6: "0" or a number without leading zero, <= MAX.
std::optional<unsigned> cidr_length(std::string_view d, unsigned max) {
  if (d.empty() || d.size() > 3) return std::nullopt;
  if (d.size() > 1 && d[0] == '0') return std::nullopt;
  unsigned v = 0;
  for (char c : d) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// ip4_network - RFC 7208 5.6 ip4-network: four qnums, no leading zeros.
bool ip4_network(std::string_view s) {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t j = i;
    while (j < s.size() && is_digit(s[j])) ++j;
    std::string_view q = s.substr(i, j - i);
    if (q.empty() || q.size() > 3 || (q.size() > 1 && q[0] == '0')) return false;
    unsigned v = 0;
    for (char c : q) v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > 255) return false;
    ++parts;
    if (j == s.size()) break;
    if (s[j] != '.' || parts == 4) return false;
    i = j + 1;
  }
  return parts == 4;
}

bool ip6_network(std::string_view s) {
  if (s.empty() || s.size() > 45) return false;
  std::string z(s);
  in6_addr a{};
  return inet_pton(AF_INET6, z.c_str(), &a) == 1;
}

Expected<SpfTerm, std::string> parse_mechanism(char qualifier, std::string_view name, std::string_view rest) {
  SpfTerm t;
  t.qualifier = qualifier;
  t.name = lower(name);
  auto need_domain = [&](std::string_view r) -> Expected<std::string, std::string> {
    if (r.empty() || r[0] != ':') return Unexpected<std::string>{t.name + " needs \":\" domain-spec (RFC 7208 5)"};
    return domain_spec(r.substr(1));
  };
  auto fail = [&](const std::string& why) { return Unexpected<std::string>{why}; };
  if (t.name == "all") {
    t.kind = TermKind::All;
    if (!rest.empty()) return fail("\"all\" takes no argument (RFC 7208 5.1)");
  } else if (t.name == "include" || t.name == "exists") {
    t.kind = t.name == "include" ? TermKind::Include : TermKind::Exists;
    auto d = need_domain(rest);
    if (!d) return fail(d.error());
    t.domain_spec = std::move(*d);
  } else if (t.name == "ptr") {
    t.kind = TermKind::Ptr;
    if (!rest.empty()) {
      auto d = need_domain(rest);
      if (!d) return fail(d.error());
      t.domain_spec = std::move(*d);
    }
  } else if (t.name == "a" || t.name == "mx") {
    t.kind = t.name == "a" ? TermKind::A : TermKind::Mx;
    // dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ] at the
    // end; a domain-spec cannot end in "/digits" (its domain-end cannot).
    std::string_view body = rest;
    std::size_t slash = body.rfind('/');
    if (slash != std::string_view::npos && all_digits(body.substr(slash + 1))) {
      std::string_view digits = body.substr(slash + 1);
      if (slash > 0 && body[slash - 1] == '/') {
        t.cidr6 = cidr_length(digits, 128);
        if (!t.cidr6) return fail("bad ip6-cidr-length (RFC 7208 5.6)");
        body = body.substr(0, slash - 1);
        slash = body.rfind('/');
        if (slash != std::string_view::npos && all_digits(body.substr(slash + 1))) {
          t.cidr4 = cidr_length(body.substr(slash + 1), 32);
          if (!t.cidr4) return fail("bad ip4-cidr-length (RFC 7208 5.6)");
          body = body.substr(0, slash);
        }
      } else {
        t.cidr4 = cidr_length(digits, 32);
        if (!t.cidr4) return fail("bad ip4-cidr-length (RFC 7208 5.6)");
        body = body.substr(0, slash);
      }
    }
    if (!body.empty()) {
      auto d = need_domain(body);
      if (!d) return fail(d.error());
      t.domain_spec = std::move(*d);
    }
  } else if (t.name == "ip4" || t.name == "ip6") {
    bool v6 = t.name == "ip6";
    t.kind = v6 ? TermKind::Ip6 : TermKind::Ip4;
    if (rest.empty() || rest[0] != ':') return fail(t.name + " needs \":\" network (RFC 7208 5.6)");
    std::string_view net = rest.substr(1);
    std::size_t slash = net.find('/');
    if (slash != std::string_view::npos) {
      auto c = cidr_length(net.substr(slash + 1), v6 ? 128 : 32);
      if (!c) return fail("bad " + t.name + " CIDR length (RFC 7208 5.6)");
      (v6 ? t.cidr6 : t.cidr4) = c;
      net = net.substr(0, slash);
    }
    if (v6 ? !ip6_network(net) : !ip4_network(net)) return fail("bad " + t.name + " network (RFC 7208 5.6)");
    t.network = std::string(net);
  } else {
    return fail("unknown mechanism \"" + std::string(name.substr(0, 32)) + "\" (RFC 7208 5)");
  }
  return t;
}

// MacroBudget - libspf2 1.2.10's accounting in SPF_c_parse_macro: each
// string literal block is 4 header octets plus its length, each macro
// variable 4 octets, each rounded up to 4; the CIDR block 4 octets.
struct MacroBudget {
  std::size_t used = 0;
  std::size_t literal = 0;
  void flush() {
    if (literal > 0) used += (kLibspf2BlockHeader + literal + kLibspf2Align - 1) / kLibspf2Align * kLibspf2Align;
    literal = 0;
  }
  void scan(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
      if (s[i] == '%' && i + 1 < s.size()) {
        char d = s[i + 1];
        if (d == '{') {
          flush();
          used += 4;
          std::size_t close = s.find('}', i);
          i = close == std::string_view::npos ? s.size() : close + 1;
          continue;
        }
        literal += d == '-' ? 3 : 1;  // "%-" becomes "%20"
        i += (d == '%' || d == '_' || d == '-') ? 2 : 1;
        continue;
      }
      ++literal;
      ++i;
    }
    flush();
  }
};

}  // namespace

bool is_spf_version(std::string_view txt) noexcept {
  // RFC 7208 4.5: "v=spf1" followed by SP or the end of the record.
  return txt.size() >= 6 && ascii_iequals(txt.substr(0, 6), "v=spf1") && (txt.size() == 6 || txt[6] == ' ');
}

std::vector<std::string> select_spf_records(const std::vector<std::string>& txt) {
  std::vector<std::string> out;
  for (const auto& t : txt) {
    if (is_spf_version(t)) out.push_back(t);
  }
  return out;
}

Expected<SpfRecord, std::string> parse_spf_record(std::string_view text) {
  if (!is_spf_version(text)) return Unexpected<std::string>{"not an SPF record"};
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) {
      // RFC 7208 4.6.1: terms are separated by SP only; 7.1: macro-literal
      // is visible US-ASCII. A control character or a non-ASCII byte
      // anywhere is a syntax error (4.6: permerror).
      return Unexpected<std::string>{"control character or non-ASCII byte in the record (RFC 7208 4.6.1)"};
    }
  }
  SpfRecord rec;
  int redirects = 0, exps = 0;
  std::size_t i = 6;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    if (i >= text.size()) break;
    std::size_t end = text.find(' ', i);
    if (end == std::string_view::npos) end = text.size();
    std::string_view token = text.substr(i, end - i);
    i = end;

    char qualifier = '\0';
    std::size_t p = 0;
    if (std::string_view("+-~?").find(token[0]) != std::string_view::npos) {
      qualifier = token[0];
      p = 1;
    }
    std::size_t n = p;
    while (n < token.size() && (is_alnum(token[n]) || token[n] == '-' || token[n] == '_' || token[n] == '.')) ++n;
    std::string_view name = token.substr(p, n - p);
    if (n < token.size() && token[n] == '=' && !name.empty() && is_alpha(name[0])) {
      // RFC 7208 4.6.1: modifier = redirect / explanation / unknown-modifier
      if (qualifier != '\0') return Unexpected<std::string>{"modifier with a qualifier (RFC 7208 4.6.1)"};
      std::string_view value = token.substr(n + 1);
      SpfTerm t;
      t.qualifier = '\0';
      t.name = lower(name);
      if (t.name == "redirect" || t.name == "exp") {
        // RFC 7208 6: at most once each.
        if (++(t.name == "redirect" ? redirects : exps) > 1) {
          return Unexpected<std::string>{t.name + "= appears more than once (RFC 7208 6)"};
        }
        auto d = domain_spec(value);
        if (!d) return Unexpected<std::string>{t.name + "=: " + d.error()};
        t.kind = t.name == "redirect" ? TermKind::Redirect : TermKind::Exp;
        t.domain_spec = std::move(*d);
      } else {
        // RFC 7208 6: unknown-modifier = name "=" macro-string; ignored,
        // but its syntax is checked.
        auto m = scan_macro_string(value, false);
        if (!m) return Unexpected<std::string>{"modifier " + t.name + "=: " + m.error()};
        t.kind = TermKind::Unknown;
      }
      rec.terms.push_back(std::move(t));
      continue;
    }
    auto m = parse_mechanism(qualifier == '\0' ? '+' : qualifier, name, token.substr(n));
    if (!m) return Unexpected<std::string>{m.error()};
    rec.terms.push_back(std::move(*m));
  }
  return rec;
}

std::string rewrite_for_libspf2(const SpfRecord& record, bool client_is_ipv6, std::string_view domain) {
  std::string out = "v=spf1";
  bool has_all = false;
  for (const auto& t : record.terms) has_all = has_all || t.kind == TermKind::All;
  const SpfTerm* redirect = nullptr;
  for (const auto& t : record.terms) {
    std::string q(1, t.qualifier);
    switch (t.kind) {
      case TermKind::Unknown:
        break;  // RFC 7208 6: unrecognized modifiers MUST be ignored
      case TermKind::Redirect:
        redirect = &t;
        break;
      case TermKind::Exp:
        out += " exp=" + t.domain_spec;
        break;
      case TermKind::All:
        out += " " + q + "all";
        break;
      case TermKind::Include:
      case TermKind::Exists:
        out += " " + q + t.name + ":" + t.domain_spec;
        break;
      case TermKind::Ptr:
        out += " " + q + "ptr" + (t.domain_spec.empty() ? "" : ":" + t.domain_spec);
        break;
      case TermKind::Ip4:
        if (t.cidr4 && *t.cidr4 == 0) {
          out += " " + q + "ip4:0.0.0.0/1 " + q + "ip4:128.0.0.0/1";  // all of IPv4
        } else {
          out += " " + q + "ip4:" + t.network + (t.cidr4 ? "/" + std::to_string(*t.cidr4) : "");
        }
        break;
      case TermKind::Ip6:
        if (t.cidr6 && *t.cidr6 == 0) {
          out += " " + q + "ip6:::/1 " + q + "ip6:8000::/1";  // all of IPv6
        } else {
          out += " " + q + "ip6:" + t.network + (t.cidr6 ? "/" + std::to_string(*t.cidr6) : "");
        }
        break;
      case TermKind::A:
      case TermKind::Mx: {
        std::optional<unsigned> c4 = t.cidr4, c6 = t.cidr6;
        std::optional<unsigned>& mine = client_is_ipv6 ? c6 : c4;
        std::optional<unsigned>& other = client_is_ipv6 ? c4 : c6;
        std::string ds = t.domain_spec;
        if (mine && *mine == 0) {
          // RFC 7208 5.3/5.4 with a zero CIDR: any address record matches.
          ds = (ds.empty() ? escape_for_libspf2(domain) : ds) + std::string(kCidrZeroMarker);
          mine.reset();
        }
        // The other family's length never applies to this client; libspf2
        // would reject a zero one.
        if (other && *other == 0) other.reset();
        out += " " + q + t.name + (ds.empty() ? "" : ":" + ds);
        if (c4) out += "/" + std::to_string(*c4);
        if (c6) out += "//" + std::to_string(*c6);
        break;
      }
    }
  }
  // RFC 7208 6.1: redirect takes effect after all mechanisms, and is
  // ignored when an "all" mechanism is present anywhere.
  if (redirect != nullptr && !has_all) out += " redirect=" + redirect->domain_spec;
  return out;
}

std::optional<std::string> check_explain_string(std::string_view text) {
  auto scan = scan_macro_string(text, true);
  if (!scan) return std::nullopt;
  return scan->normalized;
}

std::string expand_macros(std::string_view text, const MacroValues& v, std::string_view domain) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c != '%' || i + 1 >= text.size()) {
      out += c;
      ++i;
      continue;
    }
    const char d = text[i + 1];
    if (d == '%') out += '%';
    if (d == '_') out += ' ';
    if (d == '-') out += "%20";
    if (d != '{') {
      i += 2;
      continue;
    }
    // "%{" letter *DIGIT ["r"] *delimiter "}" (checked by scan_macro_string)
    std::size_t j = i + 2;
    const char letter = text[j++];
    unsigned keep = 0;
    while (j < text.size() && is_digit(text[j])) keep = keep * 10 + static_cast<unsigned>(text[j++] - '0');
    bool reverse = false;
    if (j < text.size() && (text[j] == 'r' || text[j] == 'R')) {
      reverse = true;
      ++j;
    }
    std::string delims;
    while (j < text.size() && text[j] != '}') delims += text[j++];
    i = j + 1;
    if (delims.empty()) delims = ".";

    // RFC 7208 7.3: the macro letters.
    std::string value;
    switch (lower(letter)) {
      case 's': value = v.sender; break;
      case 'l': value = v.local; break;
      case 'o': value = v.sender_domain; break;
      case 'd': value = std::string(domain); break;
      case 'i': value = v.ip_dotted; break;
      case 'p': value = v.validated_name ? v.validated_name(domain) : std::string("unknown"); break;
      case 'v': value = v.ipv6 ? "ip6" : "in-addr"; break;
      case 'h': value = v.helo; break;
      case 'c': value = v.ip_text; break;
      case 'r': value = v.receiver; break;
      case 't': value = std::to_string(v.now); break;
      default: break;
    }
    // Split on the delimiters, reverse on "r", keep the N rightmost parts,
    // join with "." (7.3: no special case for empty parts).
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    for (std::size_t k = 0; k <= value.size(); ++k) {
      if (k == value.size() || delims.find(value[k]) != std::string::npos) {
        parts.emplace_back(value.data() + start, k - start);
        start = k + 1;
      }
    }
    if (reverse) std::reverse(parts.begin(), parts.end());
    const std::size_t from = (keep == 0 || keep >= parts.size()) ? 0 : parts.size() - keep;
    std::string expanded;
    for (std::size_t k = from; k < parts.size(); ++k) {
      if (k > from) expanded += '.';
      expanded.append(parts[k]);
    }
    if (letter >= 'A' && letter <= 'Z') {
      // Upper-case letter: URL-escape all but RFC 3986 unreserved characters.
      std::string escaped;
      for (char ch : expanded) {
        if (is_alnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
          escaped += ch;
        } else {
          const auto u = static_cast<unsigned char>(ch);
          escaped += '%';
          escaped += kHex[u >> 4];
          escaped += kHex[u & 0x0f];
        }
      }
      expanded = std::move(escaped);
    }
    out += expanded;
  }
  return out;
}

std::string escape_for_libspf2(std::string_view literal) {
  std::string out;
  out.reserve(literal.size() + 8);
  for (char c : literal) {
    if (c == '%') {
      out += "%%";
    } else if (c == ' ') {
      out += "%_";  // libspf2's compiler also mangles a bare space in exp text
    } else if (c == '\0') {
      out += '\x7f';  // not representable in a C string; an invalid name either way
    } else {
      out += c;
    }
  }
  return out;
}

std::string finish_explanation(std::string_view expanded) {
  std::string out;
  out.reserve(expanded.size());
  for (char c : expanded) {
    const auto u = static_cast<unsigned char>(c);
    // RFC 7208 6.2: the explanation is limited to US-ASCII.
    out += (u < 0x20 || u > 0x7e) ? '?' : c;
  }
  return out;
}

std::optional<std::string> libspf2_compile_problem(std::string_view text, bool is_explanation) {
  auto over = [](const MacroBudget& b) { return b.used > kLibspf2MaxData; };
  if (is_explanation) {
    MacroBudget b;
    b.scan(text);
    if (over(b)) return "explanation compiles to " + std::to_string(b.used) + " octets, over libspf2's 511";
    return std::nullopt;
  }
  // SPF_c_mech_add() starts a mechanism only while the record's compiled
  // mechanisms (4-octet header + data each) leave room for a header in
  // SPF_MAX_MECH_LEN; past that it returns SPF_E_BIG_MECH without logging
  // an error, and SPF_record_compile() succeeds with the rest of the
  // record silently dropped (64 ip4 terms and "-all": the "-all" is gone).
  std::size_t mech_len = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t end = text.find(' ', i);
    if (end == std::string_view::npos) end = text.size();
    std::string_view term = text.substr(i, end - i);
    i = end + 1;
    if (term.empty() || is_spf_version(term)) continue;
    if (std::string_view("+-~?").find(term[0]) != std::string_view::npos) term.remove_prefix(1);
    std::size_t sep = term.find_first_of(":=/");
    std::string_view name = term.substr(0, sep);
    const bool modifier = sep != std::string_view::npos && term[sep] == '=' && !ascii_iequals(name, "redirect");
    std::size_t data = 0;
    if (ascii_iequals(name, "ip4")) {
      data = 4;  // struct in_addr
    } else if (ascii_iequals(name, "ip6")) {
      data = 16;  // struct in6_addr
    } else if (sep != std::string_view::npos) {
      std::string_view value = term.substr(sep + (term[sep] == '/' ? 0 : 1));
      MacroBudget b;
      // A trailing CIDR is stripped before the macro-string is parsed;
      // count its 4-octet block whenever one may be written.
      std::size_t slash = value.rfind('/');
      if (!modifier && slash != std::string_view::npos && all_digits(value.substr(slash + 1))) {
        b.used += 4;
        value = value.substr(0, slash);
        if (!value.empty() && value.back() == '/') value.remove_suffix(1);
        std::size_t s4 = value.rfind('/');
        if (s4 != std::string_view::npos && all_digits(value.substr(s4 + 1))) value = value.substr(0, s4);
      }
      b.scan(value);
      if (over(b)) {
        return "term \"" + std::string(term.substr(0, 32)) + "...\" compiles to " + std::to_string(b.used) +
               " octets, over libspf2's 511";
      }
      data = b.used;
    }
    if (modifier) continue;  // one exp= at most: far below SPF_MAX_MOD_LEN
    if (mech_len + 4 > kLibspf2MaxData) {
      return "record too large for libspf2: its mechanisms compile to more than 511 octets "
             "(SPF_MAX_MECH_LEN; libspf2 would drop the rest silently)";
    }
    mech_len += 4 + data;
  }
  return std::nullopt;
}

bool valid_lookup_name(std::string_view name) noexcept {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > kMaxDomain) return false;
  std::size_t label = 0;
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (u < 0x20 || u == 0x7f) return false;
    if (++label > kMaxLabel) return false;
  }
  return label > 0;
}

bool valid_check_domain(std::string_view domain) noexcept {
  if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  if (!valid_lookup_name(domain)) return false;
  std::size_t last_dot = domain.rfind('.');
  if (last_dot == std::string_view::npos) return false;  // RFC 7208 4.3: multi-label
  for (char c : domain) {
    // RFC 5321 4.1.2 domain: letters, digits, hyphens (and, in practice,
    // underscores); a domain literal "[...]" is not a domain.
    if (!(is_alnum(c) || c == '-' || c == '_' || c == '.')) return false;
  }
  // An all-numeric last label is an IP address, not a domain name.
  return !all_digits(domain.substr(last_dot + 1));
}

std::string truncate_lookup_name(std::string_view name) {
  std::string_view n = name;
  bool dot = !n.empty() && n.back() == '.';
  if (dot) n.remove_suffix(1);
  while (n.size() > kMaxDomain) {
    std::size_t p = n.find('.');
    if (p == std::string_view::npos) break;
    n.remove_prefix(p + 1);
  }
  return std::string(n);
}

}  // namespace dmarc::spf2
