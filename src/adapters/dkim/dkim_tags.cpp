// dkim_tags.cpp - strict RFC 6376 3.2 tag-list parsing (see dkim_tags.hpp)
#include "adapters/dkim/dkim_tags.hpp"

#include <cstdio>

namespace dmarc::dkim {

namespace {

bool is_alpha(unsigned char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(unsigned char c) noexcept { return c >= '0' && c <= '9'; }
// FWS after unfolding: SP, HTAB, and the CR/LF of folded lines.
bool is_fws(unsigned char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
// RFC 6376 3.2 VALCHAR = %x21-3A / %x3C-7E (printable ASCII but ";").
bool is_valchar(unsigned char c) noexcept { return c >= 0x21 && c <= 0x7e && c != ';'; }

std::string bad_char(unsigned char c) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "invalid character 0x%02x in tag-list", c);
  return buf;
}

int hex_value(unsigned char c) noexcept {
  if (is_digit(c)) return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::optional<std::string_view> TagList::get(std::string_view name) const noexcept {
  for (const auto& [k, v] : tags_)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

// parse_tag_list - RFC 6376 3.2, duplicates refused (see the header)
Expected<TagList, std::string> parse_tag_list(std::string_view text) {
  TagList out;
  std::size_t i = 0;
  const std::size_t n = text.size();
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  auto skip_fws = [&] {
    while (i < n && is_fws(at(i))) ++i;
  };
  for (;;) {
    skip_fws();
    if (i == n) {
      // Empty input, or whitespace after a final ";".
      if (out.tags_.empty()) return Unexpected<std::string>{"empty tag-list"};
      return out;
    }
    // tag-name = ALPHA *ALNUMPUNC
    if (!is_alpha(at(i))) {
      if (at(i) == ';') return Unexpected<std::string>{"empty tag-spec"};
      return Unexpected<std::string>{bad_char(at(i))};
    }
    std::size_t name_begin = i;
    while (i < n && (is_alpha(at(i)) || is_digit(at(i)) || at(i) == '_')) ++i;
    std::string name(text.substr(name_begin, i - name_begin));
    skip_fws();
    if (i == n || at(i) != '=') {
      if (i == n || at(i) == ';') return Unexpected<std::string>{"tag " + name + " without value"};
      return Unexpected<std::string>{bad_char(at(i))};
    }
    ++i;  // '='
    skip_fws();
    // tag-value: tvals separated by whitespace, up to ';' or the end.
    std::size_t value_begin = i, value_end = i;
    while (i < n && at(i) != ';') {
      unsigned char c = at(i);
      if (is_valchar(c)) {
        ++i;
        value_end = i;
      } else if (is_fws(c)) {
        ++i;
      } else {
        return Unexpected<std::string>{bad_char(c)};
      }
    }
    for (const auto& kv : out.tags_)
      if (kv.first == name) return Unexpected<std::string>{"duplicate tag " + name + "="};
    out.tags_.emplace_back(std::move(name), std::string(text.substr(value_begin, value_end - value_begin)));
    if (i == n) return out;
    ++i;  // ';'
    std::size_t after = i;
    skip_fws();
    if (i == n) return out;  // a final ";" (and whitespace)
    i = after;
  }
}

std::string strip_fws(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text)
    if (!is_fws(static_cast<unsigned char>(c))) out += c;
  return out;
}

std::string qp_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '=' && i + 2 < text.size()) {
      int hi = hex_value(static_cast<unsigned char>(text[i + 1]));
      int lo = hex_value(static_cast<unsigned char>(text[i + 2]));
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    if (!is_fws(static_cast<unsigned char>(text[i]))) out += text[i];
  }
  return out;
}

std::optional<unsigned long long> parse_unsigned(std::string_view text) noexcept {
  if (text.empty() || text.size() > 12) return std::nullopt;
  unsigned long long v = 0;
  for (char c : text) {
    if (!is_digit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 10 + static_cast<unsigned long long>(c - '0');
  }
  return v;
}

std::optional<std::string> signature_value_error(const TagList& tags) {
  auto digits = [](std::string_view v, std::size_t max) {
    if (v.empty() || v.size() > max) return false;
    for (char c : v)
      if (!is_digit(static_cast<unsigned char>(c))) return false;
    return true;
  };
  if (auto d = tags.get("d"); d && !d->empty() && !valid_key_name(*d)) return std::string("invalid d= value");
  if (auto sel = tags.get("s"); sel && !sel->empty() && !valid_key_name(*sel)) return std::string("invalid s= value");
  if (auto t = tags.get("t"); t && !digits(*t, 12)) return std::string("invalid t= value");
  if (auto x = tags.get("x"); x && !digits(*x, 12)) return std::string("invalid x= value");
  if (auto l = tags.get("l"); l && !digits(*l, 76)) return std::string("invalid l= value");
  return std::nullopt;
}

bool valid_key_name(std::string_view name) noexcept {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '_')) return false;
    if (++label > 63) return false;
  }
  return label > 0;
}

}  // namespace dmarc::dkim
