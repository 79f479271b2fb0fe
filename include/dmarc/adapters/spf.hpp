// NAME
//   spf - SPF (RFC 7208) checks on libspf2, answered by our Resolver
// STANDARDS
//   RFC 7208 2.3 (HELO identity), 2.4 (MAIL FROM identity; null reverse-path
//   uses postmaster@HELO), 2.6 (results), 4.3 (initial processing), 4.5
//   (record selection), 4.6 (syntax), 4.6.4 (10 DNS mechanisms, 2 void
//   lookups), 5.x (mechanisms), 6 (modifiers), 7 (macros); RFC 8601 2.7.2
//   (smtp.mailfrom / smtp.helo properties).
// SYNOPSIS
//   auto v = dmarc::SpfVerifier::create(resolver, dmarc::SpfOptions{});
//   dmarc::SpfCheckResult r = (*v)->check("192.0.2.1", "mx.example.net",
//                                         "alice@example.net");
// DESCRIPTION
//   Every DNS query libspf2 makes goes through a custom SPF_dns_server_t
//   layer onto the Resolver given at creation, so SPF shares the
//   nameservers and TTL cache of DMARC and DKIM.
//   check() evaluates the MAIL FROM identity; when MAIL FROM is empty (the
//   null reverse-path of bounces and auto-replies) it evaluates the HELO
//   identity instead, as postmaster@HELO, and says so in `scope` (RFC 7208
//   2.4). A MAIL FROM without a local part ("@example.net") is checked as
//   postmaster@example.net (4.3). A domain that is not a multi-label domain
//   name (a domain literal, an over-long or empty label) gives none (4.3).
//   An IPv4-mapped IPv6 client is an IPv4 client (5).
//
//   DNS status is mapped to temperror/permerror only through
//   dns_error_kind() (dmarc/core/dns.hpp): Temporary (timeout, SERVFAIL)
//   gives temperror, Permanent (FORMERR, NOTIMP, malformed) permerror. By
//   RFC 7208 5 a DNS error ends the check - in the record lookup, a, mx
//   (and its hosts), exists, include and redirect - except where the RFC
//   says otherwise: the ptr mechanism's PTR lookup (no match) and its name
//   validation (name skipped, 5.5), %{p} ("unknown", 7.3) and the exp=
//   lookup (no explanation, 6.2). A name no query can be formed from
//   (empty or over-long label) counts as non-existent.
//
//   libspf2 1.2.10 departs from RFC 7208 in several places; our layer
//   (src/adapters/spf/spf_syntax.hpp, spf_dns_bridge.hpp) corrects them:
//     - the record is checked against the full RFC 7208 syntax first (any
//       error: permerror, 4.6), and selected as 4.5 says ("v=spf1" then a
//       space or the end; several records: permerror)
//     - every macro is expanded by us (libspf2's transformers drop a
//       character when the part count is reached); names over 253 octets
//       lose labels on the left (7.3); libspf2 only sees literals
//     - unknown modifiers are ignored, redirect= is applied after all
//       mechanisms and ignored when "all" is present (6, 6.1)
//     - CIDR length 0 works (libspf2 refuses it)
//     - the 10-term limit counts the whole check, include and redirect
//       included (libspf2 counts per record); the 2-void-lookup limit is
//       ours (libspf2 has none); at most 10 PTR names are looked at,
//       further names ignored (libspf2 gave permerror) (4.6.4)
//     - a client on 127.0.0.0/8 or ::1 is evaluated like any other
//       (SPF_request_query_mailfrom() would pass it unconditionally)
//     - a record whose mechanisms compile to more than 511 octets (about 63
//       ip4 or 25 ip6 terms) is permerror: libspf2 would silently drop the
//       rest of it, "-all" included. This is the one limit RFC 7208 does
//       not have.
//   The exp= record is looked up at most once, after the result, and only
//   for a fail (6.2, 4.6.4); its text and the default explanation are
//   limited to 255 printable US-ASCII octets. A check ends in temperror
//   after max_duration (4.6.4).
// THREADING
//   An SpfVerifier is used by one thread at a time: its DNS layer keeps
//   per-check state, and libspf2 server objects are not documented as
//   thread-safe. Create one per worker thread or per connection (cheap: no
//   DNS, a few small allocations). Separate verifiers run in parallel
//   threads safely (tested; libspf2 keeps no mutable global state on this
//   path once its log handlers are set, which create() does once). The
//   Resolver behind them may be shared when it is itself thread-safe
//   (LdnsResolver, CachedResolver are).
// DIAGNOSTICS
//   create() returns a message when libspf2 cannot be set up or the default
//   explanation is not an RFC 7208 explain-string. check() never throws
//   except std::bad_alloc (rethrown after libspf2 has returned); other
//   failures are temperror with `problem` set. libspf2's warnings are not
//   printed.
// SECURITY
//   Records, names and explanation text are untrusted DNS data. No macro
//   and no record with a syntax error reaches libspf2, and every term's
//   compiled size is checked against libspf2's 511-octet buffers, so its
//   macro compiler and expander cannot be driven into the overflows of
//   CVE-2021-20314, -33912, -33913 (fixed in Debian's 1.2.10-7.1 anyway)
//   or CVE-2023-42118 (not fixed in 1.2.10-7.2).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "dmarc/core/dns.hpp"
#include "dmarc/core/evaluate.hpp"
#include "dmarc/core/expected.hpp"

namespace dmarc {

struct SpfOptions {
  // %{r} macro: the receiving host's name (RFC 7208 7.3).
  std::string receiver = "localhost";
  // RFC 7208 4.6.4 limits.
  unsigned max_dns_mechanisms = 10;
  unsigned max_void_lookups = 2;
  // The explanation of a fail whose record has no usable exp= (RFC 7208
  // 6.2): a macro-string such as "See https://example.net/spf?s=%{S}".
  // Empty: no explanation.
  std::string default_explanation;
  // RFC 7208 4.6.4: the most one check may take (SHOULD be at least 20 s);
  // past it the check ends with temperror.
  std::chrono::milliseconds max_duration{20000};
};

struct SpfCheckResult {
  AuthResult result = AuthResult::None;  // Pass Fail SoftFail Neutral None TempError PermError
  SpfScope scope = SpfScope::MailFrom;
  std::string domain;       // the domain checked: MAIL FROM domain, or the HELO name
  std::string identity;     // the full identity: local@domain, postmaster@helo, or the HELO name
  std::string explanation;  // the exp= text of a fail, when there is one
  std::string problem;      // for temperror/permerror (and none): what went wrong (logs, A-R comment)
  unsigned dns_mechanisms = 0;  // DNS-querying terms evaluated (RFC 7208 4.6.4)
  unsigned void_lookups = 0;    // of which answered NXDOMAIN or no records

  SpfInput input() const { return SpfInput{result, domain, scope}; }
};

class SpfVerifier {
 public:
  static Expected<std::unique_ptr<SpfVerifier>, std::string> create(Resolver& resolver, SpfOptions options = {});
  ~SpfVerifier();
  SpfVerifier(const SpfVerifier&) = delete;
  SpfVerifier& operator=(const SpfVerifier&) = delete;

  // check - the MAIL FROM identity, or HELO when mail_from is empty (2.4).
  // mail_from is the address without angle brackets ("" for <>).
  SpfCheckResult check(std::string_view client_ip, std::string_view helo, std::string_view mail_from);
  // check_helo - the HELO identity alone (RFC 7208 2.3).
  SpfCheckResult check_helo(std::string_view client_ip, std::string_view helo);

 private:
  SpfVerifier();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dmarc
