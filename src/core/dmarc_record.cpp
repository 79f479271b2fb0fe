// dmarc_record.cpp - DMARC policy record parser (RFC 7489 6.3/6.4, RFC 9989 4.7)
#include "dmarc/core/dmarc_record.hpp"
#include "dmarc/core/domain.hpp"

#include <algorithm>
#include <charconv>

namespace dmarc {

std::string_view to_token(Policy p) noexcept {
  switch (p) {
    case Policy::None: return "none";
    case Policy::Quarantine: return "quarantine";
    case Policy::Reject: return "reject";
  }
  return "none";
}

std::string_view to_token(AlignmentMode m) noexcept { return m == AlignmentMode::Strict ? "s" : "r"; }

std::string_view to_token(PsdFlag f) noexcept {
  switch (f) {
    case PsdFlag::Yes: return "y";
    case PsdFlag::No: return "n";
    case PsdFlag::Unspecified: return "u";
  }
  return "u";
}

std::string_view to_token(RecordError e) noexcept {
  switch (e) {
    case RecordError::Empty: return "empty";
    case RecordError::TooLong: return "too_long";
    case RecordError::NotDmarc: return "not_dmarc";
    case RecordError::InvalidPolicy: return "invalid_policy";
    case RecordError::MissingPolicy: return "missing_policy";
  }
  return "unknown";
}

namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}


// Split at ';'. "\;" is a publisher's escape that some DNS editors store
// literally; it is read as a separator (noted by the caller).
std::vector<std::string_view> split_tags(std::string_view s, bool& saw_escaped) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == ';') {
      std::size_t end = i;
      if (i < s.size() && i > start && s[i - 1] == '\\') {
        saw_escaped = true;
        end = i - 1;
      }
      out.push_back(s.substr(start, end - start));
      start = i + 1;
    }
  }
  return out;
}

// RFC 7489 6.4: dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]
// Whitespace around '!' and the unit is tolerated (seen in the wild).
std::optional<ReportUri> parse_uri(std::string_view item) {
  item = trim(item);
  if (item.empty()) return std::nullopt;
  ReportUri u;
  std::size_t bang = item.rfind('!');
  std::string_view uri = item;
  if (bang != std::string_view::npos) {
    uri = trim(item.substr(0, bang));
    std::string_view size = trim(item.substr(bang + 1));
    std::size_t digits = 0;
    while (digits < size.size() && size[digits] >= '0' && size[digits] <= '9') ++digits;
    if (digits == 0 || digits > 15) return std::nullopt;
    std::uint64_t n = 0;
    std::from_chars(size.data(), size.data() + digits, n);
    std::string_view unit = trim(size.substr(digits));
    std::uint64_t mult = 1;
    if (unit.size() == 1) {
      switch (unit[0]) {
        case 'k': case 'K': mult = 1ULL << 10; break;
        case 'm': case 'M': mult = 1ULL << 20; break;
        case 'g': case 'G': mult = 1ULL << 30; break;
        case 't': case 'T': mult = 1ULL << 40; break;
        default: return std::nullopt;
      }
    } else if (!unit.empty()) {
      return std::nullopt;
    }
    u.max_size = n * mult;
  }
  // RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"
  std::size_t colon = uri.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  if (!((uri[0] >= 'a' && uri[0] <= 'z') || (uri[0] >= 'A' && uri[0] <= 'Z'))) return std::nullopt;
  for (std::size_t i = 0; i < colon; ++i) {
    char c = uri[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
              c == '-' || c == '.';
    if (!ok) return std::nullopt;
  }
  if (colon + 1 >= uri.size()) return std::nullopt;
  for (char c : uri) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
  }
  u.uri = std::string(uri);
  return u;
}

std::vector<ReportUri> parse_uri_list(std::string_view value, std::string_view tag,
                                      std::vector<RecordProblem>& problems) {
  std::vector<ReportUri> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= value.size(); ++i) {
    if (i == value.size() || value[i] == ',') {
      std::string_view item = trim(value.substr(start, i - start));
      start = i + 1;
      if (item.empty()) continue;
      if (auto u = parse_uri(item)) {
        if (out.size() < kMaxReportUris) {
          out.push_back(std::move(*u));
        } else {
          problems.push_back({ProblemSeverity::Warning, std::string(tag),
                              "more than " + std::to_string(kMaxReportUris) + " URIs; the rest ignored"});
          break;
        }
      } else {
        problems.push_back({ProblemSeverity::Warning, std::string(tag),
                            "invalid URI '" + std::string(item.substr(0, 80)) + "' ignored"});
      }
    }
  }
  return out;
}

std::optional<FailureOptions> parse_fo(std::string_view value) {
  FailureOptions fo;
  fo.all_fail = false;
  std::string text;
  std::size_t start = 0;
  bool any = false;
  for (std::size_t i = 0; i <= value.size(); ++i) {
    if (i == value.size() || value[i] == ':') {
      std::string_view item = trim(value.substr(start, i - start));
      start = i + 1;
      if (item.size() != 1) return std::nullopt;
      switch (item[0]) {
        case '0': fo.all_fail = true; break;
        case '1': fo.any_fail = true; break;
        case 'd': case 'D': fo.dkim = true; break;
        case 's': case 'S': fo.spf = true; break;
        default: return std::nullopt;
      }
      if (!text.empty()) text += ':';
      text += static_cast<char>(item[0] >= 'A' && item[0] <= 'Z' ? item[0] - 'A' + 'a' : item[0]);
      any = true;
    }
  }
  if (!any) return std::nullopt;
  fo.text = text;
  return fo;
}

template <class Int>
std::optional<Int> parse_uint(std::string_view v, Int max) {
  if (v.empty() || v.size() > 10) return std::nullopt;
  // Digits only (RFC 7489 6.4: 1*DIGIT): from_chars would take "-500" for
  // a signed Int, and pct=-500 would sample every failure out (found by
  // tests/fuzz/fuzz_dmarc_record).
  for (char c : v)
    if (c < '0' || c > '9') return std::nullopt;
  Int n{};
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc{} || ptr != v.data() + v.size() || n > max) return std::nullopt;
  return n;
}

}  // namespace

std::optional<Policy> parse_policy_token(std::string_view s) noexcept {
  if (ascii_iequals(s, "none")) return Policy::None;
  if (ascii_iequals(s, "quarantine")) return Policy::Quarantine;
  if (ascii_iequals(s, "reject")) return Policy::Reject;
  return std::nullopt;
}

bool ReportUri::is_mailto() const { return !mailto_address().empty(); }

std::string ReportUri::mailto_address() const {
  if (uri.size() < 8 || !ascii_iequals(std::string_view(uri).substr(0, 7), "mailto:")) return {};
  std::string_view addr = std::string_view(uri).substr(7);
  // RFC 6068: mailto:addr[?hfields]; "mailto://host" is not an address.
  if (auto q = addr.find('?'); q != std::string_view::npos) addr = addr.substr(0, q);
  std::size_t at = addr.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= addr.size()) return {};
  if (addr.substr(0, 2) == "//") return {};
  return std::string(addr);
}

bool is_dmarc_record(std::string_view txt) noexcept {
  // RFC 7489 6.4: dmarc-version = "v" *WSP "=" *WSP %x44.4d.41.52.43.31
  std::string_view s = trim(txt);
  if (s.empty() || (s[0] != 'v' && s[0] != 'V')) return false;
  s.remove_prefix(1);
  s = trim(s);
  if (s.empty() || s[0] != '=') return false;
  s.remove_prefix(1);
  s = trim(s);
  if (s.substr(0, 6) != "DMARC1") return false;
  s.remove_prefix(6);
  if (s.substr(0, 2) == "\\;") return true;
  s = trim(s);
  return s.empty() || s[0] == ';';
}

Expected<DmarcRecord, RecordParseError> parse_dmarc_record(std::string_view txt) {
  if (trim(txt).empty()) return Unexpected(RecordParseError{RecordError::Empty, "empty record"});
  if (txt.size() > kMaxRecordLength)
    return Unexpected(RecordParseError{RecordError::TooLong, "record longer than " +
                                                                 std::to_string(kMaxRecordLength) + " octets"});
  if (!is_dmarc_record(txt))
    return Unexpected(RecordParseError{RecordError::NotDmarc, "does not start with v=DMARC1"});

  DmarcRecord r;
  bool escaped = false;
  auto specs = split_tags(txt, escaped);
  if (escaped)
    r.problems.push_back({ProblemSeverity::Warning, "", "backslash before ';' (\\;) read as ';'"});

  std::vector<std::string> seen;
  bool p_seen = false, p_bad = false, sp_bad = false, np_bad = false;
  std::string bad_policy_detail;
  bool first = true;
  for (std::string_view raw : specs) {
    std::string_view spec = trim(raw);
    if (spec.empty()) continue;  // RFC 7489 6.4 allows a trailing ';'
    std::size_t eq = spec.find('=');
    if (eq == std::string_view::npos) {
      r.problems.push_back({ProblemSeverity::Warning, "",
                            "malformed tag '" + std::string(spec.substr(0, 40)) + "' (no '=') ignored"});
      continue;
    }
    std::string name = lower(trim(spec.substr(0, eq)));
    std::string_view value = trim(spec.substr(eq + 1));
    if (first) {  // checked by is_dmarc_record(): v=DMARC1
      first = false;
      seen.push_back(name);
      continue;
    }
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
      r.problems.push_back({ProblemSeverity::Warning, name, "tag repeated; the first value is used"});
      continue;
    }
    seen.push_back(name);
    auto discard = [&](std::string_view what) {
      r.problems.push_back({ProblemSeverity::Warning, name,
                            "invalid value '" + std::string(value.substr(0, 40)) + "' discarded, default " +
                                std::string(what) + " used (RFC 7489 6.3)"});
    };
    if (name == "v") {
      r.problems.push_back({ProblemSeverity::Warning, "v", "v= is not the first tag; ignored"});
    } else if (name == "p") {
      p_seen = true;
      if (auto pol = parse_policy_token(value)) {
        r.p = *pol;
      } else {
        p_bad = true;
        bad_policy_detail = "invalid p value '" + std::string(value.substr(0, 40)) + "'";
      }
    } else if (name == "sp") {
      if (auto pol = parse_policy_token(value)) {
        r.sp = *pol;
      } else {
        sp_bad = true;
        bad_policy_detail = "invalid sp value '" + std::string(value.substr(0, 40)) + "'";
      }
    } else if (name == "np") {
      if (auto pol = parse_policy_token(value)) {
        r.np = *pol;
      } else {
        np_bad = true;
        bad_policy_detail = "invalid np value '" + std::string(value.substr(0, 40)) + "'";
      }
    } else if (name == "adkim" || name == "aspf") {
      AlignmentMode& m = name == "adkim" ? r.adkim : r.aspf;
      if (ascii_iequals(value, "r")) m = AlignmentMode::Relaxed;
      else if (ascii_iequals(value, "s")) m = AlignmentMode::Strict;
      else discard("r");
    } else if (name == "fo") {
      if (auto fo = parse_fo(value)) r.fo = *fo;
      else discard("0");
    } else if (name == "rua") {
      r.rua = parse_uri_list(value, "rua", r.problems);
    } else if (name == "ruf") {
      r.ruf = parse_uri_list(value, "ruf", r.problems);
    } else if (name == "t") {
      if (ascii_iequals(value, "y")) r.t = true;
      else if (ascii_iequals(value, "n")) r.t = false;
      else discard("n");
    } else if (name == "psd") {
      if (ascii_iequals(value, "y")) r.psd = PsdFlag::Yes;
      else if (ascii_iequals(value, "n")) r.psd = PsdFlag::No;
      else if (ascii_iequals(value, "u")) r.psd = PsdFlag::Unspecified;
      else discard("u");
    } else if (name == "pct") {
      if (auto n = parse_uint<int>(value, 100)) {
        r.pct = *n;
        r.pct_present = true;
      } else {
        discard("100");
      }
    } else if (name == "rf") {
      // RFC 7489 6.3: colon-separated report formats; only afrf is defined.
      bool ok = !value.empty();
      std::size_t start = 0;
      for (std::size_t i = 0; i <= value.size() && ok; ++i) {
        if (i == value.size() || value[i] == ':') {
          if (!ascii_iequals(trim(value.substr(start, i - start)), "afrf")) ok = false;
          start = i + 1;
        }
      }
      if (ok) r.rf = "afrf";
      else discard("afrf");
    } else if (name == "ri") {
      if (auto n = parse_uint<std::uint32_t>(value, 0xffffffffU)) r.ri = *n;
      else discard("86400");
    } else {
      // RFC 7489 6.3: "Unknown tags MUST be ignored."
      r.problems.push_back({ProblemSeverity::Info, name, "unknown tag ignored"});
    }
  }

  // RFC 7489 6.6.3 / RFC 9989 4.7: a missing or invalid p (or invalid sp,
  // np) with at least one usable rua URI acts as "p=none".
  bool usable_rua = std::any_of(r.rua.begin(), r.rua.end(), [](const ReportUri& u) { return u.is_mailto(); });
  if (p_bad || sp_bad || np_bad) {
    if (!usable_rua)
      return Unexpected(RecordParseError{RecordError::InvalidPolicy, bad_policy_detail + " and no usable rua"});
    r.p = Policy::None;
    r.sp.reset();
    r.np.reset();
    r.p_from_rua_rule = true;
    r.problems.push_back({ProblemSeverity::Warning, "p", bad_policy_detail + "; acting as p=none (RFC 7489 6.6.3)"});
  } else if (!p_seen) {
    // RFC 9989: a PSD record (psd=y) need not carry p.
    if (!usable_rua && r.psd != PsdFlag::Yes)
      return Unexpected(RecordParseError{RecordError::MissingPolicy, "no p tag and no usable rua"});
    r.p = Policy::None;
    r.p_from_rua_rule = true;
    r.problems.push_back({ProblemSeverity::Warning, "p", "no p tag; acting as p=none (RFC 7489 6.6.3)"});
  }
  return r;
}

}  // namespace dmarc
