// NAME
//   dns - the Resolver interface every DNS lookup goes through
// DESCRIPTION
//   One interface serves DMARC discovery, SPF (libspf2 bridge) and DKIM
//   (libopendkim bridge), so one cache and one set of nameservers serve all
//   three. Answers carry a ranked status, as Postfix's dns.h does:
//     Ok        the name has records of the type asked for
//     NxDomain  the name does not exist (RCODE 3)
//     NoData    the name exists but has no record of that type
//     TempFail  timeout, SERVFAIL, REFUSED, network error: try again later
//     PermFail  a malformed query or answer (FORMERR, NOTIMP, bad data)
//   dns_error_kind() is the single place that maps a status onto the
//   temperror / permerror distinction of RFC 7208 2.6, RFC 6376 3.9 and
//   RFC 7489 / RFC 9989.
// SECURITY
//   Record text is untrusted network input; it is kept as bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dmarc {

enum class DnsStatus { Ok, NxDomain, NoData, TempFail, PermFail };

enum class RRType : std::uint16_t { A = 1, PTR = 12, MX = 15, TXT = 16, AAAA = 28 };

struct DnsAnswer {
  DnsStatus status = DnsStatus::TempFail;
  // One string per resource record of the type asked for:
  //   TXT   the character-strings of one record concatenated (RFC 7208 3.3,
  //         RFC 6376 3.6.2.2, RFC 7489 6.1)
  //   A     dotted quad            AAAA  RFC 5952 text
  //   MX    "preference exchange"  (exchange without the trailing dot)
  //   PTR   the host name, without the trailing dot
  std::vector<std::string> records;
  // How long this answer may be cached, in seconds: the smallest TTL of the
  // records, or for a negative answer the SOA minimum (RFC 2308 5).
  std::uint32_t ttl = 0;
  // A short diagnostic for logs ("timeout", "SERVFAIL from 127.0.0.1").
  std::string why;
};

std::string_view to_token(DnsStatus s) noexcept;
std::string_view to_token(RRType t) noexcept;

// Errors of DNS origin collapse into one of these two at the protocol level.
enum class DnsErrorKind { None, Temporary, Permanent };
// dns_error_kind - the one mapping from a DNS status to temp/perm error.
// NxDomain and NoData are not errors: they are answers.
DnsErrorKind dns_error_kind(DnsStatus s) noexcept;

class Resolver {
 public:
  virtual ~Resolver() = default;
  // query - look up NAME (a domain, no trailing dot needed) for TYPE.
  // Never throws; every failure is a status.
  virtual DnsAnswer query(std::string_view name, RRType type) = 0;

  DnsAnswer txt(std::string_view name) { return query(name, RRType::TXT); }
  DnsAnswer a(std::string_view name) { return query(name, RRType::A); }
  DnsAnswer aaaa(std::string_view name) { return query(name, RRType::AAAA); }
  DnsAnswer mx(std::string_view name) { return query(name, RRType::MX); }
  // ptr - reverse lookup of an IPv4 or IPv6 address in text form.
  // An unparseable address gives PermFail.
  DnsAnswer ptr(std::string_view address);
};

// reverse_name - the in-addr.arpa / ip6.arpa name for an address, or
// nullopt when the text is not an IP address.
std::optional<std::string> reverse_name(std::string_view address);

}  // namespace dmarc
