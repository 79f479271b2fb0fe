// domain.cpp - domain name normalisation and Punycode (RFC 1035, RFC 5890/5891, RFC 3492)
//
// IDN handling is deliberately partial: a U-label is validated as UTF-8,
// its ASCII letters are lower-cased and it is Punycode-encoded as is. There
// is no Unicode case folding, no NFC normalisation and no IDNA2008 code
// point check (RFC 5892), so "BÜCHER.example" and "bücher.example" give
// different A-labels ("xn--bcher-jua" vs "xn--bcher-kva"). The few code
// points that make names look like something else are refused outright:
// C1 controls, Unicode spaces, zero-width and bidi formatting characters,
// and the ideographic/full-width full stops that UTS #46 would map to ".".
// An ASCII label that already reads "xn--..." is kept as written (lower
// case); its Punycode is not decoded or checked.
#include "dmarc/core/domain.hpp"

#include <cstdint>
#include <limits>

namespace dmarc {

namespace {

// Work bound for punycode_encode(): the RFC 3492 encoder is quadratic in the
// number of distinct code points. A valid label never needs more than
// 4 * 63 octets of UTF-8; larger inputs are refused as if they overflowed.
constexpr std::size_t kMaxPunycodeInput = 8192;
// Upper bound on the octets of a name before normalisation: a U-label
// takes at most 4 octets of UTF-8 for each octet of its A-label.
constexpr std::size_t kMaxRawDomainLength = 4 * kMaxDomainLength + 1;
constexpr std::size_t kMaxRawLabelLength = 4 * kMaxLabelLength;

// decode_utf8 - strict UTF-8 (RFC 3629 4) to code points: no overlong
// forms, no surrogates, nothing above U+10FFFF. False on invalid input.
bool decode_utf8(std::string_view s, std::vector<std::uint32_t>& out) {
  out.clear();
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    std::uint32_t min = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
      cp = b0 & 0x1Fu;
      min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      cp = b0 & 0x0Fu;
      min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      cp = b0 & 0x07u;
      min = 0x10000;
    } else {
      return false;  // continuation byte, C0/C1 overlong lead, or F5..FF
    }
    if (s.size() - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0u) != 0x80u) return false;
      cp = (cp << 6) | (b & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    out.push_back(cp);
    i += len;
  }
  return true;
}

// is_refused_code_point - non-ASCII code points that must not appear in a
// U-label here: they are invisible, are spaces or controls, or act as label
// separators under UTS #46 (all are DISALLOWED by RFC 5892 anyway).
bool is_refused_code_point(std::uint32_t cp) noexcept {
  if (cp >= 0x80 && cp <= 0xA0) return true;      // C1 controls, NO-BREAK SPACE
  if (cp == 0xAD) return true;                    // SOFT HYPHEN
  if (cp == 0x1680 || cp == 0x180E) return true;  // OGHAM SPACE MARK, MONGOLIAN VS
  if (cp >= 0x2000 && cp <= 0x200F) return true;  // spaces, ZWSP, ZWNJ, ZWJ, LRM, RLM
  if (cp >= 0x2028 && cp <= 0x202F) return true;  // LS, PS, bidi embeddings, NNBSP
  if (cp >= 0x205F && cp <= 0x206F) return true;  // MMSP, word joiner, bidi isolates
  if (cp == 0x3000) return true;                  // IDEOGRAPHIC SPACE
  if (cp == 0x3002 || cp == 0xFF0E || cp == 0xFF61) return true;  // full stops (UTS #46 2.3)
  if (cp == 0xFEFF) return true;                  // BOM / ZWNBSP
  if (cp >= 0xFFF9 && cp <= 0xFFFB) return true;  // interlinear annotation controls
  return false;
}

// is_label_char - RFC 1035 2.3.1 letters, digits and hyphen, plus "_"
// (RFC 8552 underscored names such as _dmarc).
bool is_label_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// RFC 3492 5: Punycode parameter values.
constexpr std::uint32_t kBase = 36;
constexpr std::uint32_t kTmin = 1;
constexpr std::uint32_t kTmax = 26;
constexpr std::uint32_t kSkew = 38;
constexpr std::uint32_t kDamp = 700;
constexpr std::uint32_t kInitialBias = 72;
constexpr std::uint32_t kInitialN = 0x80;
constexpr char kDelimiter = '-';
constexpr std::uint32_t kMaxInt = std::numeric_limits<std::uint32_t>::max();

// adapt - RFC 3492 6.1 bias adaptation function.
std::uint32_t adapt(std::uint32_t delta, std::uint32_t numpoints, bool firsttime) noexcept {
  delta = firsttime ? delta / kDamp : delta / 2;
  delta += delta / numpoints;
  std::uint32_t k = 0;
  while (delta > ((kBase - kTmin) * kTmax) / 2) {
    delta /= kBase - kTmin;
    k += kBase;
  }
  return k + (kBase - kTmin + 1) * delta / (delta + kSkew);
}

// encode_digit - RFC 3492 5: 0..25 -> a..z, 26..35 -> 0..9 (lower case).
char encode_digit(std::uint32_t d) noexcept {
  return d < 26 ? static_cast<char>('a' + d) : static_cast<char>('0' + (d - 26));
}

// punycode_from_code_points - RFC 3492 6.3 encoding procedure with the
// overflow detection of 6.4. Basic code points are copied as they are.
std::optional<std::string> punycode_from_code_points(const std::vector<std::uint32_t>& input) {
  std::string out;
  // "let b = the number of basic code points in the input; copy them to the
  // output in order, followed by a delimiter if b > 0"
  for (std::uint32_t c : input) {
    if (c < kInitialN) out.push_back(static_cast<char>(c));
  }
  if (input.size() > kMaxInt - 1) return std::nullopt;
  const auto length = static_cast<std::uint32_t>(input.size());
  const auto b = static_cast<std::uint32_t>(out.size());
  std::uint32_t h = b;
  if (b > 0) out.push_back(kDelimiter);

  std::uint32_t n = kInitialN;
  std::uint32_t delta = 0;
  std::uint32_t bias = kInitialBias;
  while (h < length) {
    // "let m = the minimum {non-basic} code point >= n in the input"
    std::uint32_t m = kMaxInt;
    for (std::uint32_t c : input) {
      if (c >= n && c < m) m = c;
    }
    // "let delta = delta + (m - n) * (h + 1), fail on overflow"
    if (m - n > (kMaxInt - delta) / (h + 1)) return std::nullopt;
    delta += (m - n) * (h + 1);
    n = m;
    for (std::uint32_t c : input) {
      // "if c < n then increment delta, fail on overflow"
      if (c < n) {
        if (delta == kMaxInt) return std::nullopt;
        ++delta;
      }
      if (c == n) {
        // Represent delta as a generalized variable-length integer (3.3).
        std::uint32_t q = delta;
        for (std::uint32_t k = kBase;; k += kBase) {
          std::uint32_t t = k <= bias ? kTmin : (k >= bias + kTmax ? kTmax : k - bias);
          if (q < t) break;
          out.push_back(encode_digit(t + (q - t) % (kBase - t)));
          q = (q - t) / (kBase - t);
        }
        out.push_back(encode_digit(q));
        bias = adapt(delta, h + 1, h == b);
        delta = 0;
        ++h;
      }
    }
    // delta < length here, so neither increment can overflow (6.3 notes).
    ++delta;
    ++n;
  }
  return out;
}

// normalize_label - one label of a name: lower-case ASCII or "xn--" A-label.
std::optional<std::string> normalize_label(std::string_view label) {
  // RFC 1035 2.3.4: labels are 1..63 octets; an empty label means "..",
  // a leading dot or a second trailing dot.
  if (label.empty() || label.size() > kMaxRawLabelLength) return std::nullopt;
  bool ascii = true;
  for (char c : label) {
    if (static_cast<unsigned char>(c) >= 0x80) ascii = false;
  }
  std::string out;
  if (ascii) {
    out.reserve(label.size());
    for (char c : label) {
      if (!is_label_char(c)) return std::nullopt;  // controls, spaces, NUL, "@", ...
      out.push_back(ascii_lower(c));
    }
  } else {
    // RFC 5891 4.4: a U-label is converted to an A-label by Punycode
    // (RFC 3492) with the "xn--" prefix (RFC 5890 2.3.2.1). Only ASCII is
    // lower-cased; see the file comment for what is not mapped.
    std::vector<std::uint32_t> cps;
    if (!decode_utf8(label, cps)) return std::nullopt;
    for (auto& cp : cps) {
      if (cp < 0x80) {
        if (!is_label_char(static_cast<char>(cp))) return std::nullopt;
        if (cp >= 'A' && cp <= 'Z') cp += 'a' - 'A';
      } else if (is_refused_code_point(cp)) {
        return std::nullopt;
      }
    }
    // RFC 5891 4.2.3.1: a U-label must not begin or end with a hyphen.
    if (cps.front() == '-' || cps.back() == '-') return std::nullopt;
    auto puny = punycode_from_code_points(cps);
    if (!puny) return std::nullopt;
    out = "xn--" + *puny;
  }
  // RFC 1035 2.3.4 / RFC 5890 2.3.2.1: at most 63 octets (as an A-label).
  if (out.size() > kMaxLabelLength) return std::nullopt;
  // RFC 952 / RFC 1123 2.1: a host name label neither starts nor ends
  // with a hyphen.
  if (out.front() == '-' || out.back() == '-') return std::nullopt;
  return out;
}

}  // namespace

// punycode_encode - RFC 3492 6.3 encoding of one UTF-8 label.
std::optional<std::string> punycode_encode(std::string_view utf8_label) {
  if (utf8_label.size() > kMaxPunycodeInput) return std::nullopt;
  std::vector<std::uint32_t> cps;
  if (!decode_utf8(utf8_label, cps)) return std::nullopt;
  return punycode_from_code_points(cps);
}

// normalize_domain - canonical A-label, lower-case form, or nullopt.
std::optional<std::string> normalize_domain(std::string_view name) {
  // Bound the input before doing work proportional to it.
  if (name.empty() || name.size() > kMaxRawDomainLength) return std::nullopt;
  // RFC 1034 3.1: a trailing dot makes the name absolute; strip one only.
  if (name.back() == '.') name.remove_suffix(1);
  if (name.empty()) return std::nullopt;

  std::string out;
  out.reserve(name.size());
  std::size_t start = 0;
  while (true) {
    std::size_t dot = name.find('.', start);
    std::string_view raw = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    auto label = normalize_label(raw);
    if (!label) return std::nullopt;
    if (!out.empty()) out.push_back('.');
    out += *label;
    // RFC 1035 2.3.4: 255 octets on the wire is 253 in text form.
    if (out.size() > kMaxDomainLength) return std::nullopt;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

// labels - split a normalised domain at dots.
std::vector<std::string_view> labels(std::string_view domain) {
  std::vector<std::string_view> out;
  if (domain.empty()) return out;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = domain.find('.', start);
    if (dot == std::string_view::npos) {
      out.push_back(domain.substr(start));
      break;
    }
    out.push_back(domain.substr(start, dot - start));
    start = dot + 1;
  }
  return out;
}

// label_count - number of labels ("" has none).
std::size_t label_count(std::string_view domain) noexcept {
  if (domain.empty()) return 0;
  std::size_t n = 1;
  for (char c : domain) {
    if (c == '.') ++n;
  }
  return n;
}

// strip_labels - DOMAIN without its leftmost N labels ("" when none remain).
std::string_view strip_labels(std::string_view domain, std::size_t n) noexcept {
  while (n > 0 && !domain.empty()) {
    std::size_t dot = domain.find('.');
    if (dot == std::string_view::npos) return {};
    domain.remove_prefix(dot + 1);
    --n;
  }
  return domain;
}

// last_labels - the rightmost N labels of DOMAIN (all of it if fewer).
std::string_view last_labels(std::string_view domain, std::size_t n) noexcept {
  if (n == 0) return {};
  std::size_t end = domain.size();
  while (end > 0) {
    std::size_t dot = domain.rfind('.', end - 1);
    if (dot == std::string_view::npos) return domain;
    if (--n == 0) return domain.substr(dot + 1);
    end = dot;
  }
  return domain;
}

// is_subdomain_or_same - CHILD equals PARENT or ends in ".PARENT".
bool is_subdomain_or_same(std::string_view child, std::string_view parent) noexcept {
  if (child == parent) return true;
  if (parent.empty() || child.size() <= parent.size()) return false;
  return child.substr(child.size() - parent.size()) == parent && child[child.size() - parent.size() - 1] == '.';
}

bool ascii_iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string ascii_lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

}  // namespace dmarc
