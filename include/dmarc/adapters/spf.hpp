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
//   DNS status is mapped to temperror/permerror only through
//   dns_error_kind() (dmarc/core/dns.hpp); by RFC 7208 5 a DNS error stops
//   the check, except in the ptr mechanism and %{p} (5.5, 7.3: no match,
//   name skipped) and in the exp= lookup (6.2: no explanation).
//   Where libspf2 1.2.10 departs from RFC 7208 the record is checked and
//   rewritten before libspf2 compiles it (src/adapters/spf/spf_syntax.hpp):
//   full RFC 7208 syntax check (any error: permerror), unknown modifiers
//   ignored, redirect= applied after all mechanisms and ignored when "all"
//   is present, CIDR length 0, the 10-term and 2-void-lookup limits counted
//   over the whole check (libspf2 counts per record and has no void limit),
//   at most 10 PTR names (further names ignored, not permerror). A client
//   on 127.0.0.0/8 or ::1 is evaluated like any other (libspf2's
//   SPF_request_query_mailfrom() would pass it unconditionally).
// THREADING
//   An SpfVerifier is used by one thread at a time: its DNS layer keeps
//   per-check state, and libspf2 server objects are not documented as
//   thread-safe. Create one per worker thread or per connection (cheap: no
//   DNS, a few small allocations). Separate verifiers run in parallel
//   threads safely (tested); the Resolver behind them may be shared when it
//   is itself thread-safe (LdnsResolver, CachedResolver are).
// DIAGNOSTICS
//   create() returns a message when libspf2 cannot be set up (bad
//   default_explanation). check() never throws except std::bad_alloc;
//   other failures are temperror with `problem` set.
// SECURITY
//   Records, names and explanation text are untrusted DNS data. Records are
//   fully syntax-checked before libspf2 sees them; terms whose compiled
//   form exceeds libspf2's 511-octet buffers are refused (permerror) so
//   libspf2's macro compiler cannot overrun them (CVE-2023-42118; Debian's
//   1.2.10-7.2 carries the fixes for CVE-2021-20314, -33912 and -33913).
//   The explanation is limited to printable US-ASCII (6.2).
#pragma once

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
