// NAME
//   ldns_resolver - the production Resolver: a stub resolver on top of ldns
// STANDARDS
//   RFC 1035 (messages, 3.3.14 TXT character-strings), RFC 2308 5 (negative
//   caching TTL), RFC 6604 (RCODE after a CNAME chain), RFC 6891 (EDNS(0)
//   UDP payload size), RFC 5952 (IPv6 text), RFC 7505 (null MX)
// SYNOPSIS
//   dmarc::LdnsResolverOptions opts;        // empty nameservers: resolv.conf
//   opts.nameservers = {"127.0.0.1:5353", "[2001:db8::53]"};
//   opts.timeout = std::chrono::milliseconds(1500);
//   auto r = dmarc::LdnsResolver::create(opts);
//   if (!r) die(r.error());
//   dmarc::DnsAnswer a = (*r)->txt("_dmarc.example.com");
//   (Prefer member assignment to designated initializers: g++ 12 -Wextra
//   warns about the members a designated initializer leaves out.)
// DESCRIPTION
//   LdnsResolver sends recursive (RD=1) queries to the configured
//   nameservers and maps each answer onto a DnsAnswer:
//     NOERROR with records of the type asked   Ok
//     NOERROR without them                     NoData
//     NXDOMAIN                                 NxDomain
//     SERVFAIL, REFUSED, timeout, network      TempFail (next server is tried)
//     FORMERR, NOTIMP, other RCODEs, malformed PermFail
//   Names are absolute: no search list, no default domain. DNSSEC is off.
//
//   Each try sends the query to every nameserver in the configured order
//   (no randomisation); up to `tries` rounds are made. SERVFAIL and REFUSED
//   move on to the next server, like timeouts. A truncated UDP answer is
//   repeated over TCP (ldns fallback; when no EDNS was sent ldns first
//   retries UDP with a 4096-octet EDNS size); an answer still truncated
//   after that (TC over TCP too, or tcp_fallback off) is TempFail
//   ("truncated answer from ..."), never data. Answers whose ID or question
//   does not match the query are ignored (treated as no answer).
//
//   CNAME chains in the answer section are followed from the name asked
//   for (owner names compared case-insensitively). When an answer ends in
//   a CNAME whose target has no data and no SOA was given (an
//   authoritative server for a different zone), the target is queried
//   again. At most kMaxCnameHops CNAMEs are followed in all; a longer
//   chain or a loop gives PermFail.
//
//   Record text: TXT is the character-strings of ONE record concatenated,
//   as raw bytes (no escaping); A a dotted quad; AAAA RFC 5952 text; MX
//   "preference exchange" and PTR the host name, names in RFC 1035
//   presentation form (\DDD escapes for odd bytes) without the trailing
//   dot; the root name (null MX) is ".".
//   ttl: the smallest TTL of the CNAMEs followed and the records returned;
//   for NxDomain/NoData min(SOA TTL, SOA MINIMUM) of the SOA in the
//   authority section (RFC 2308 5), kDefaultNegativeTtl when there is none.
// THREADING
//   query() may be called from any number of threads at once. ldns_resolver
//   handles are not shared between threads: each query borrows one set from
//   a small mutex-protected pool (created on demand, returned afterwards).
// DIAGNOSTICS
//   create() returns an error message for bad nameserver strings, a bad
//   option or an unreadable resolv.conf without nameservers; the
//   constructor throws std::invalid_argument with the same message.
//   query() never throws: every failure is a status with `why` set, e.g.
//   "timeout contacting 127.0.0.1:5353", "SERVFAIL from 127.0.0.1:53",
//   "invalid domain name: label longer than 63 octets".
// SECURITY
//   Answers are untrusted: lengths are checked before use, TXT data stays
//   bytes, the answer must echo the query's ID and question. A name longer
//   than 253 octets, with an empty label, a label over 63 octets or a
//   control character is refused (PermFail) without sending anything.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/dns.hpp"
#include "dmarc/core/expected.hpp"

namespace dmarc {

// Nameserver - one parsed nameserver address.
struct Nameserver {
  std::string address;     // numeric IPv4 or IPv6 address, no brackets
  std::uint16_t port = 53;
  // to_string - "IP:PORT", or "[IPv6]:PORT".
  std::string to_string() const;
};

// parse_nameserver - "IP", "IP:PORT", "IPv6" or "[IPv6]:PORT" (also
// "[IPv6]"). Addresses must be numeric; PORT is 1..65535.
Expected<Nameserver, std::string> parse_nameserver(std::string_view text);

struct LdnsResolverOptions {
  // Nameservers in the order they are tried. Empty: the "nameserver" lines
  // of resolv_conf (read once, by ldns, when the resolver is created).
  std::vector<std::string> nameservers;
  std::string resolv_conf = "/etc/resolv.conf";
  // How long to wait for one answer from one server (per try), 1..60000 ms.
  std::chrono::milliseconds timeout{2000};
  // Rounds over all nameservers, 1..20. 1 = no retransmission.
  unsigned tries = 2;
  // EDNS(0) UDP payload size advertised (512..4096); nullopt = no EDNS.
  std::optional<std::uint16_t> edns_buffer_size = 1232;
  // Repeat a truncated (TC=1) UDP answer over TCP.
  bool tcp_fallback = true;
};

class LdnsResolver final : public Resolver {
 public:
  using Options = LdnsResolverOptions;
  static constexpr std::size_t kMaxCnameHops = 8;
  static constexpr std::uint32_t kDefaultNegativeTtl = 300;

  // create - a resolver for OPTIONS, or a message saying what is wrong.
  static Expected<std::unique_ptr<LdnsResolver>, std::string> create(Options options);

  // Throws std::invalid_argument (message as create()) for bad options.
  explicit LdnsResolver(Options options);
  ~LdnsResolver() override;
  LdnsResolver(const LdnsResolver&) = delete;
  LdnsResolver& operator=(const LdnsResolver&) = delete;

  // Resolver
  DnsAnswer query(std::string_view name, RRType type) override;

  // nameservers - the servers actually used (after reading resolv.conf).
  const std::vector<Nameserver>& nameservers() const noexcept;
  const Options& options() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dmarc
