// config.cpp - configuration file parser and settings table
#include "dmarc/config/config.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "dmarc/build_config.hpp"

namespace dmarc {

const std::vector<SettingSpec>& settings_table() {
  static const std::vector<SettingSpec> table = {
      {"Nameservers", SettingType::List, "",
       "DNS servers to ask, as IP, IP:PORT or [IPv6]:PORT, separated by commas or spaces. "
       "Empty: the nameservers in /etc/resolv.conf.", {}, 0, 0},
      {"DNSTimeout", SettingType::Integer, "5", "Seconds to wait for one DNS answer before retrying.", {}, 1, 60},
      {"DNSRetries", SettingType::Integer, "2", "How many times a DNS query is sent before it is a temporary error.",
       {}, 1, 10},
      {"DNSCacheSize", SettingType::Integer, "65536",
       "Maximum number of DNS answers kept in the cache (0 disables the cache).", {}, 0, 10000000},
      {"DNSCacheMaxTTL", SettingType::Integer, "3600", "Longest time in seconds an answer stays in the cache.", {}, 0,
       604800},
      {"DMARCMode", SettingType::Choice, "rfc9989",
       "rfc9989: DNS tree walk for the organizational domain, np, psd and t (RFC 9989). "
       "rfc7489: Public Suffix List organizational domain and pct sampling (RFC 7489).",
       {"rfc9989", "rfc7489"}, 0, 0},
      {"PublicSuffixList", SettingType::Path, build::kDefaultPslFile,
       "The Public Suffix List file used in rfc7489 mode (Debian package publicsuffix).", {}, 0, 0},
  };
  return table;
}

namespace {
bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto l = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
           return l(x) == l(y);
         });
}
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}
std::string loc(const std::string& file, int line) {
  std::string s = file.empty() ? std::string("(config)") : file;
  if (line > 0) s += ":" + std::to_string(line);
  return s;
}

// Validate VALUE for SPEC and store it in C. Returns an error message or "".
std::string apply(Config& c, const SettingSpec& spec, std::string_view value) {
  std::string v(value);
  switch (spec.type) {
    case SettingType::Integer: {
      long n = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (v.empty() || ec != std::errc{} || p != v.data() + v.size())
        return std::string(spec.key) + " needs a whole number, not '" + v + "'";
      if (n < spec.min || n > spec.max)
        return std::string(spec.key) + " must be between " + std::to_string(spec.min) + " and " +
               std::to_string(spec.max) + ", not " + v;
      if (spec.key == "DNSTimeout") c.dns_timeout_s = static_cast<int>(n);
      else if (spec.key == "DNSRetries") c.dns_retries = static_cast<int>(n);
      else if (spec.key == "DNSCacheSize") c.dns_cache_size = static_cast<std::size_t>(n);
      else if (spec.key == "DNSCacheMaxTTL") c.dns_cache_max_ttl = static_cast<std::uint32_t>(n);
      break;
    }
    case SettingType::Boolean: {
      bool b;
      if (iequals(v, "yes") || iequals(v, "true") || iequals(v, "on") || v == "1") b = true;
      else if (iequals(v, "no") || iequals(v, "false") || iequals(v, "off") || v == "0") b = false;
      else return std::string(spec.key) + " needs yes or no, not '" + v + "'";
      v = b ? "yes" : "no";
      break;
    }
    case SettingType::Choice: {
      auto it = std::find_if(spec.choices.begin(), spec.choices.end(), [&](std::string_view ch) { return iequals(ch, v); });
      if (it == spec.choices.end()) {
        std::string all;
        for (auto ch : spec.choices) all += (all.empty() ? "" : ", ") + std::string(ch);
        return std::string(spec.key) + " must be one of " + all + ", not '" + v + "'";
      }
      v = std::string(*it);
      if (spec.key == "DMARCMode") c.mode = v == "rfc7489" ? DmarcMode::Rfc7489 : DmarcMode::Rfc9989;
      break;
    }
    case SettingType::List: {
      auto items = split_list(v);
      if (spec.key == "Nameservers") c.nameservers = items;
      std::string joined;
      for (const auto& i : items) joined += (joined.empty() ? "" : ", ") + i;
      v = joined;
      break;
    }
    case SettingType::Path:
      if (!v.empty() && v[0] != '/') return std::string(spec.key) + " needs an absolute path, not '" + v + "'";
      if (spec.key == "PublicSuffixList") c.public_suffix_list = v;
      break;
    case SettingType::String:
      break;
  }
  c.values[std::string(spec.key)] = v;
  return {};
}
}  // namespace

std::string ConfigError::str() const { return loc(file, line) + ": " + message; }
std::string ConfigWarning::str() const { return loc(file, line) + ": " + message; }

const SettingSpec* find_setting(std::string_view key) noexcept {
  for (const auto& s : settings_table()) {
    if (iequals(s.key, key)) return &s;
  }
  return nullptr;
}

std::vector<std::string> split_list(std::string_view v) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : v) {
    if (ch == ',' || ch == ' ' || ch == '\t') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

Config default_config() {
  Config c;
  for (const auto& s : settings_table()) {
    std::string err = apply(c, s, s.default_value);
    (void)err;  // defaults are valid by construction (checked by a test)
  }
  return c;
}

Expected<Config, ConfigError> parse_config(std::string_view text, const std::string& file) {
  Config c = default_config();
  c.source = file;
  int lineno = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++lineno;
    if (line.find('\0') != std::string_view::npos)
      return Unexpected(ConfigError{file, lineno, "NUL byte in configuration line"});
    // '#' starts a comment at the start of a line or after whitespace.
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line = line.substr(0, i);
        break;
      }
    }
    line = trim(line);
    if (line.empty()) continue;
    std::size_t sp = line.find_first_of(" \t");
    std::string_view key = line.substr(0, sp);
    std::string_view value = sp == std::string_view::npos ? std::string_view{} : trim(line.substr(sp));
    const SettingSpec* spec = find_setting(key);
    if (!spec) {
      c.warnings.push_back({file, lineno, "unknown key '" + std::string(key) + "' ignored"});
      continue;
    }
    if (value.empty() && spec->type != SettingType::List && spec->type != SettingType::String &&
        spec->type != SettingType::Path)
      return Unexpected(ConfigError{file, lineno, std::string(spec->key) + " needs a value"});
    std::string err = apply(c, *spec, value);
    if (!err.empty()) return Unexpected(ConfigError{file, lineno, err});
  }
  return c;
}

Expected<Config, ConfigError> load_config(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Unexpected(ConfigError{file, 0, std::string("cannot read: ") + std::strerror(errno)});
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > 1024 * 1024) return Unexpected(ConfigError{file, 0, "larger than 1 MiB"});
  return parse_config(text, file);
}

std::string format_effective(const Config& c) {
  std::string out;
  if (!c.source.empty()) out += "# effective configuration from " + c.source + "\n";
  for (const auto& s : settings_table()) {
    auto it = c.values.find(std::string(s.key));
    std::string v = it == c.values.end() ? std::string(s.default_value) : it->second;
    out += std::string(s.key) + (v.empty() ? "" : " " + v) + "\n";
  }
  return out;
}

}  // namespace dmarc
