// ip_net.cpp - IP addresses and CIDR networks (RFC 4632, RFC 4291)
#include "dmarc/core/ip_net.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace dmarc {

namespace {
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291 2.5.5.2) as IPv4.
IpAddress unmap(const IpAddress& a) {
  if (!a.v6) return a;
  static const std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(a.bytes.data(), prefix, 12) != 0) return a;
  IpAddress v4;
  std::memcpy(v4.bytes.data(), a.bytes.data() + 12, 4);
  return v4;
}
}  // namespace

std::optional<IpAddress> parse_ip(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  std::string t(text);
  // An IPv6 address may come in brackets or with an "IPv6:" tag (Postfix
  // passes client addresses bare; Sendmail may tag them).
  if (t.size() > 2 && t.front() == '[' && t.back() == ']') t = t.substr(1, t.size() - 2);
  if (t.size() > 5 && (t.compare(0, 5, "IPv6:") == 0 || t.compare(0, 5, "ipv6:") == 0)) t = t.substr(5);
  IpAddress a;
  if (inet_pton(AF_INET, t.c_str(), a.bytes.data()) == 1) return a;
  if (inet_pton(AF_INET6, t.c_str(), a.bytes.data()) == 1) {
    a.v6 = true;
    return a;
  }
  return std::nullopt;
}

std::string IpAddress::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<IpNet> parse_ip_net(std::string_view text) {
  std::size_t slash = text.find('/');
  auto addr = parse_ip(text.substr(0, slash));
  if (!addr) return std::nullopt;
  IpNet n;
  n.base = *addr;
  unsigned max = addr->v6 ? 128 : 32;
  n.prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || v > max) return std::nullopt;
    n.prefix = v;
  }
  return n;
}

bool IpNet::contains(const IpAddress& addr) const noexcept {
  IpAddress a = unmap(addr);
  IpAddress b = unmap(base);
  if (a.v6 != b.v6) return false;
  unsigned p = prefix;
  if (base.v6 && !b.v6) p = p >= 96 ? p - 96 : 0;  // a mapped network written in IPv6 form
  unsigned full = p / 8, rest = p % 8;
  if (std::memcmp(a.bytes.data(), b.bytes.data(), full) != 0) return false;
  if (rest == 0) return true;
  std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == (b.bytes[full] & mask);
}

bool IpNet::has_host_bits() const noexcept {
  unsigned max = base.v6 ? 128 : 32;
  for (unsigned bit = prefix; bit < max; ++bit) {
    if (base.bytes[bit / 8] & (0x80 >> (bit % 8))) return true;
  }
  return false;
}

std::string IpNet::str() const { return base.str() + "/" + std::to_string(prefix); }

bool IpNetList::contains(const IpAddress& a) const noexcept {
  for (const auto& n : nets_) {
    if (n.contains(a)) return true;
  }
  return false;
}

bool IpNetList::contains(std::string_view ip_text) const {
  auto a = parse_ip(ip_text);
  return a && contains(*a);
}

}  // namespace dmarc
