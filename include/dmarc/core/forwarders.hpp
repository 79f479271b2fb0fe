// NAME
//   forwarders - the operator's known-forwarder allowlist
// STANDARDS
//   RFC 9989 5.3 and RFC 7960 (indirect mail flows: forwarders and lists
//   break SPF and often DKIM); RFC 9990 override reason trusted_forwarder;
//   forward-confirmed reverse DNS as in RFC 8601 2.7.4 (iprev).
// DESCRIPTION
//   A ForwarderList holds three kinds of entries, written in the
//   TrustedForwarders setting:
//     192.0.2.0/24, 2001:db8::/32, 198.51.100.7   client IP / CIDR
//     fwd.example.org, .lists.example.org           client host name, proven
//                        by forward-confirmed reverse DNS (a leading dot
//                        also matches every name below it)
//     dkim:lists.example.org                        a passing DKIM signature
//                        with this d= (or a subdomain with a leading dot)
//   match() says which entry matched, for the log line and reports. Host
//   names cost a PTR query and an A/AAAA query per PTR name (at most
//   kMaxPtrNames), through the shared Resolver and its cache.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/dns.hpp"
#include "dmarc/core/evaluate.hpp"
#include "dmarc/core/ip_net.hpp"

namespace dmarc {

struct ForwarderMatch {
  enum class Kind { Ip, Host, Dkim } kind = Kind::Ip;
  std::string entry;  // the allowlist entry that matched
  std::string detail; // the host name or d= that matched it
};

class ForwarderList {
 public:
  static constexpr std::size_t kMaxPtrNames = 10;
  // add - one entry; returns an error message for a malformed one.
  std::optional<std::string> add(std::string_view entry);
  bool empty() const noexcept { return nets_.empty() && hosts_.empty() && dkim_.empty(); }

  // match - is this client (its IP; DKIM results of the message) a known
  // forwarder? DNS is only asked when host entries exist and no IP or DKIM
  // entry matched first.
  std::optional<ForwarderMatch> match(Resolver& resolver, std::string_view client_ip,
                                      const std::vector<DkimInput>& dkim) const;

 private:
  IpNetList nets_;
  std::vector<std::string> net_text_;
  std::vector<std::string> hosts_;  // normalised; leading '.' kept
  std::vector<std::string> dkim_;
};

// name_matches - NAME equals PATTERN, or PATTERN starts with '.' and NAME
// lies below it. Both lower case, no trailing dot.
bool name_matches(std::string_view name, std::string_view pattern) noexcept;

}  // namespace dmarc
