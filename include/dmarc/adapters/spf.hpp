// NAME
//   spf - SPF (RFC 7208) checks on libspf2, answered by our Resolver
// STANDARDS
//   RFC 7208 2.3 (HELO identity), 2.4 (MAIL FROM identity; null reverse-path
//   uses postmaster@HELO), 2.6 (results), 4.6.4 (10 DNS mechanisms, 2 void
//   lookups), 5.x (mechanisms), 7 (macros); RFC 8601 2.7.2 (smtp.mailfrom /
//   smtp.helo properties).
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
//   identity instead and says so in `scope` (RFC 7208 2.4).
//   DNS status is mapped to temperror/permerror only through
//   dns_error_kind() (dmarc/core/dns.hpp).
// THREADING
//   An SpfVerifier is used by one thread at a time (libspf2's server and
//   request objects are not shared). Create one per worker thread or
//   per connection; the Resolver behind it may be shared.
// DIAGNOSTICS
//   create() returns a message when libspf2 cannot be set up. check()
//   never throws except std::bad_alloc.
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
};

struct SpfCheckResult {
  AuthResult result = AuthResult::None;  // Pass Fail SoftFail Neutral None TempError PermError
  SpfScope scope = SpfScope::MailFrom;
  std::string domain;       // the domain checked: MAIL FROM domain, or the HELO name
  std::string identity;     // the full identity: local@domain, postmaster@helo, or the HELO name
  std::string explanation;  // the exp= text of a fail, when there is one
  std::string problem;      // for temperror/permerror: what went wrong (logs, A-R comment)

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
