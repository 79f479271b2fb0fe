// NAME
//   ip_net - IP addresses and CIDR networks, for IgnoreHosts and the
//   trusted-forwarder allowlist
// STANDARDS
//   RFC 4632 (CIDR), RFC 4291 2.2 (IPv6 text), RFC 5952; IPv4-mapped IPv6
//   addresses (::ffff:192.0.2.1) match IPv4 networks (RFC 4291 2.5.5.2).
// DESCRIPTION
//   parse_ip() reads a numeric address; parse_ip_net() reads "ADDR" (a
//   host: /32 or /128) or "ADDR/PREFIX". Host bits set below the prefix are
//   allowed and ignored ("192.0.2.7/24" is 192.0.2.0/24), as Postfix does
//   with a warning; the caller may warn with has_host_bits().
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dmarc {

struct IpAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // IPv4 in the first 4
  std::string str() const;
};

struct IpNet {
  IpAddress base;
  unsigned prefix = 0;
  bool contains(const IpAddress& a) const noexcept;
  bool has_host_bits() const noexcept;
  std::string str() const;
};

std::optional<IpAddress> parse_ip(std::string_view text);
std::optional<IpNet> parse_ip_net(std::string_view text);

// IpNetList - a list of networks, matched in order.
class IpNetList {
 public:
  void add(const IpNet& n) { nets_.push_back(n); }
  bool contains(const IpAddress& a) const noexcept;
  bool contains(std::string_view ip_text) const;
  bool empty() const noexcept { return nets_.empty(); }
  const std::vector<IpNet>& nets() const noexcept { return nets_; }

 private:
  std::vector<IpNet> nets_;
};

}  // namespace dmarc
