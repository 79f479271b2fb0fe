// dns.cpp - Resolver helpers and the one DNS-status-to-error mapping
#include "dmarc/core/dns.hpp"

#include <array>
#include <cstdio>
#include <cstring>

namespace dmarc {

std::string_view to_token(DnsStatus s) noexcept {
  switch (s) {
    case DnsStatus::Ok: return "ok";
    case DnsStatus::NxDomain: return "nxdomain";
    case DnsStatus::NoData: return "nodata";
    case DnsStatus::TempFail: return "tempfail";
    case DnsStatus::PermFail: return "permfail";
  }
  return "unknown";
}

std::string_view to_token(RRType t) noexcept {
  switch (t) {
    case RRType::A: return "A";
    case RRType::PTR: return "PTR";
    case RRType::MX: return "MX";
    case RRType::TXT: return "TXT";
    case RRType::AAAA: return "AAAA";
  }
  return "?";
}

// RFC 7208 2.6.6/2.6.7, RFC 6376 3.9, RFC 9989 4.10: a lookup that could not
// be completed is a temporary error; a malformed answer is permanent.
DnsErrorKind dns_error_kind(DnsStatus s) noexcept {
  switch (s) {
    case DnsStatus::Ok:
    case DnsStatus::NxDomain:
    case DnsStatus::NoData: return DnsErrorKind::None;
    case DnsStatus::TempFail: return DnsErrorKind::Temporary;
    case DnsStatus::PermFail: return DnsErrorKind::Permanent;
  }
  return DnsErrorKind::Temporary;
}

namespace {

// Pure parsers (no inet_pton: the core does no system calls it need not).
std::optional<std::array<unsigned, 4>> parse_ipv4(std::string_view s) {
  std::array<unsigned, 4> out{};
  std::size_t i = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (i >= s.size() || s[i] != '.') return std::nullopt;
      ++i;
    }
    unsigned v = 0;
    std::size_t digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && digits < 4) {
      v = v * 10 + static_cast<unsigned>(s[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0 || digits > 3 || v > 255) return std::nullopt;
    out[static_cast<std::size_t>(part)] = v;
  }
  if (i != s.size()) return std::nullopt;
  return out;
}

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 4291 2.2 text forms, including "::" and an embedded IPv4 tail.
std::optional<std::array<std::uint8_t, 16>> parse_ipv6(std::string_view s) {
  if (s.size() < 2 || s.size() > 45) return std::nullopt;
  std::array<std::uint16_t, 8> groups{};
  int n = 0;
  int gap = -1;
  std::size_t i = 0;
  if (s.substr(0, 2) == "::") {
    gap = 0;
    i = 2;
    if (i == s.size()) {
      return std::array<std::uint8_t, 16>{};
    }
  } else if (s[0] == ':') {
    return std::nullopt;
  }
  while (i < s.size()) {
    // IPv4 tail?
    std::size_t end = s.find(':', i);
    std::string_view piece = s.substr(i, end == std::string_view::npos ? s.npos : end - i);
    if (piece.find('.') != std::string_view::npos) {
      if (end != std::string_view::npos || n > 6) return std::nullopt;
      auto v4 = parse_ipv4(piece);
      if (!v4) return std::nullopt;
      groups[static_cast<std::size_t>(n++)] = static_cast<std::uint16_t>(((*v4)[0] << 8) | (*v4)[1]);
      groups[static_cast<std::size_t>(n++)] = static_cast<std::uint16_t>(((*v4)[2] << 8) | (*v4)[3]);
      i = s.size();
      break;
    }
    if (piece.empty() || piece.size() > 4 || n >= 8) return std::nullopt;
    unsigned v = 0;
    for (char c : piece) {
      int h = hexval(c);
      if (h < 0) return std::nullopt;
      v = v * 16 + static_cast<unsigned>(h);
    }
    groups[static_cast<std::size_t>(n++)] = static_cast<std::uint16_t>(v);
    if (end == std::string_view::npos) {
      i = s.size();
      break;
    }
    i = end + 1;
    if (i < s.size() && s[i] == ':') {
      if (gap >= 0) return std::nullopt;
      gap = n;
      ++i;
    } else if (i == s.size()) {
      return std::nullopt;  // trailing single ':'
    }
  }
  std::array<std::uint16_t, 8> full{};
  if (gap >= 0) {
    if (n > 7) return std::nullopt;
    int tail = n - gap;
    for (int k = 0; k < gap; ++k) full[static_cast<std::size_t>(k)] = groups[static_cast<std::size_t>(k)];
    for (int k = 0; k < tail; ++k)
      full[static_cast<std::size_t>(8 - tail + k)] = groups[static_cast<std::size_t>(gap + k)];
  } else {
    if (n != 8) return std::nullopt;
    full = groups;
  }
  std::array<std::uint8_t, 16> bytes{};
  for (std::size_t k = 0; k < 8; ++k) {
    bytes[2 * k] = static_cast<std::uint8_t>(full[k] >> 8);
    bytes[2 * k + 1] = static_cast<std::uint8_t>(full[k] & 0xff);
  }
  return bytes;
}

}  // namespace

std::optional<std::string> reverse_name(std::string_view address) {
  if (auto v4 = parse_ipv4(address)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u.in-addr.arpa", (*v4)[3], (*v4)[2], (*v4)[1], (*v4)[0]);
    return std::string(buf);
  }
  if (auto v6 = parse_ipv6(address)) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(72);
    for (int k = 15; k >= 0; --k) {
      std::uint8_t b = (*v6)[static_cast<std::size_t>(k)];
      out += kHex[b & 0xf];
      out += '.';
      out += kHex[b >> 4];
      out += '.';
    }
    out += "ip6.arpa";
    return out;
  }
  return std::nullopt;
}

DnsAnswer Resolver::ptr(std::string_view address) {
  auto name = reverse_name(address);
  if (!name) {
    DnsAnswer a;
    a.status = DnsStatus::PermFail;
    a.why = "not an IP address";
    return a;
  }
  return query(*name, RRType::PTR);
}

}  // namespace dmarc
