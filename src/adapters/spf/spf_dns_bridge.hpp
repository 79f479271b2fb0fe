// NAME
//   spf_dns_bridge - the SPF_dns_server_t layer that answers libspf2 from
//   our Resolver, and keeps the per-check RFC 7208 4.6.4 accounting
// STANDARDS
//   RFC 7208 4.3, 4.4, 4.5 (record lookup and selection), 4.6.4 (10 DNS
//   terms, 2 void lookups, 10 MX / PTR names), 5 (DNS errors: temperror,
//   except where noted), 5.4, 5.5 (ptr: errors mean no match), 6.2
//   (explanation: any problem means no explanation), 7.3 (%{p}, 253-octet
//   truncation), RFC 7505 (null MX).
// DESCRIPTION
//   libspf2 asks its DNS layer for two things:
//     get_spf   the compiled SPF record of the current domain (top level,
//               include:, redirect=). We look up TXT through the Resolver,
//               select the record (4.5), check its syntax (spf_syntax.hpp),
//               rewrite it, guard the compiler and compile it.
//     lookup    A, AAAA, MX, PTR and TXT RRsets. Every answer is built here
//               from the Resolver's answer.
//   A lookup is classified by what asked for it:
//     term        the query of an a, mx, ptr or exists term: counts toward
//                 the 10-term limit (include/redirect count in get_spf);
//                 NXDOMAIN/NODATA counts as a void lookup
//     mx target   the address lookups of the names an MX answer gave
//     ptr name    the address lookups validating the names a PTR answer
//                 gave (ptr mechanism)
//     macro %{p}  libspf2's client-name validation (PTR and addresses,
//                 asked with should_cache = 0); not expected, since every
//                 macro is expanded before libspf2 sees a record
//                 (validated_name() does %{p} itself, uncounted: 7.3)
//     explanation the exp= TXT lookup (the only TXT lookup not via get_spf):
//                 not asked at all during the evaluation; libspf2 gets a
//                 token, and the verifier looks the record up once, for a
//                 final fail only (explanation())
//   Follow-up lookups are recognised because libspf2 makes them in the
//   order of the names it was given, right after the MX/PTR answer.
//   DNS status goes through dns_error_kind() and then, by role:
//     term (a, mx, exists), mx target, record lookup
//                 -> the check stops: temperror (Temporary) or permerror
//                    (Permanent)
//     ptr term, ptr name, %{p}
//                 -> no match / name skipped / "unknown" (RFC 7208 5.5, 7.3)
//     explanation -> no explanation (6.2), the default applies
//   "Stops" are made visible to libspf2 as TRY_AGAIN (every later lookup
//   also answers TRY_AGAIN) so it unwinds at once; the verifier then
//   reports the stop's result, whatever libspf2 concluded.
//   A name no query can be built from (empty or over-long label) is
//   treated as non-existent without asking (4.3/1, 5/10/3 by analogy).
// THREADING
//   One object per SpfVerifier; not shareable between threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <netinet/in.h>

extern "C" {
#include <spf2/spf.h>
}

#include "dmarc/adapters/spf.hpp"
#include "dmarc/core/dns.hpp"
#include "adapters/spf/spf_syntax.hpp"
#include "dmarc/core/evaluate.hpp"

namespace dmarc::spf2 {

struct Stop {
  AuthResult result = AuthResult::TempError;
  std::string problem;
};

class DnsBridge {
 public:
  DnsBridge(Resolver& resolver, const SpfOptions& options);
  DnsBridge(const DnsBridge&) = delete;
  DnsBridge& operator=(const DnsBridge&) = delete;

  // server - the layer to give SPF_server_new_dns(); not freed by libspf2
  // (destroy is null), it lives as long as this object.
  SPF_dns_server_t* server() noexcept { return &dns_; }

  // begin_check - reset the per-check state for a client address, the
  // macro values of the check and the request libspf2 evaluates.
  void begin_check(bool ipv6, const in_addr& v4, const in6_addr& v6, MacroValues values, SPF_request_t* request);

  // expand - a checked macro-string expanded for current domain DOMAIN
  // (%{p} resolved through the Resolver on first use).
  std::string expand(std::string_view text, std::string_view domain);

  // explanation - the explanation for SERVED, the text libspf2 put in its
  // final answer, when that is one of our exp= tokens: the exp= TXT record
  // looked up now (once), checked and expanded (RFC 7208 6.2), or nullopt
  // when there is none to use (the default explanation applies).
  std::optional<std::string> explanation(std::string_view served);

  // kExplanationToken - starts the text served for exp= lookups.
  static constexpr char kExplanationToken = '\x04';

  const std::optional<Stop>& stop() const noexcept { return stop_; }
  // top_outcome - why the top-level record fetch did not give a record
  // (None: no record; PermError: several records, syntax, guard).
  const std::optional<Stop>& top_outcome() const noexcept { return top_outcome_; }
  // note - the last record-level problem (for include/redirect permerrors).
  const std::string& note() const noexcept { return note_; }
  unsigned dns_terms() const noexcept { return dns_terms_; }
  unsigned void_lookups() const noexcept { return void_lookups_; }
  // out_of_memory - a std::bad_alloc was caught in a callback (the
  // verifier rethrows it once libspf2 has returned).
  bool out_of_memory() const noexcept { return out_of_memory_; }

 private:
  enum class Role { Term, PtrTerm, MxTarget, PtrName, MacroPtr, MacroPtrName, Explanation };
  struct FollowUps {
    Role role = Role::Term;
    RRType type = RRType::A;
    bool cidr0 = false;
    std::vector<std::string> names;
    std::size_t next = 0;
  };

  static SPF_dns_rr_t* lookup_cb(SPF_dns_server_t* s, const char* domain, ns_type type, int should_cache);
  static SPF_errcode_t get_spf_cb(SPF_server_t* server, SPF_request_t* request, SPF_response_t* response,
                                  SPF_record_t** recordp);

  SPF_dns_rr_t* lookup(const char* domain, ns_type type, bool should_cache);
  SPF_errcode_t get_spf(SPF_server_t* server, SPF_request_t* request, SPF_response_t* response,
                        SPF_record_t** recordp);
  Role classify(const std::string& name, RRType type, bool should_cache);
  DnsAnswer ask(const std::string& name, RRType type);
  void set_stop(AuthResult result, std::string problem);
  void fail_noexcept(bool out_of_memory) noexcept;
  SPF_dns_rr_t* rr(const char* domain, ns_type type, int herrno);
  SPF_dns_rr_t* fill(SPF_dns_rr_t* out, RRType type, const std::vector<std::string>& values);
  std::string validated_name(std::string_view domain);
  bool out_of_time();

  Resolver& resolver_;
  const SpfOptions& options_;
  SPF_dns_server_t dns_{};

  bool ipv6_ = false;
  in_addr v4_{};
  in6_addr v6_{};
  unsigned dns_terms_ = 0;
  unsigned void_lookups_ = 0;
  unsigned fetches_ = 0;
  std::optional<Stop> stop_;
  bool out_of_memory_ = false;
  std::optional<Stop> top_outcome_;
  std::string note_;
  FollowUps follow_;
  bool follow_active_ = false;
  MacroValues values_;
  SPF_request_t* request_ = nullptr;
  std::optional<std::vector<std::string>> validated_;  // %{p} candidates, once per check
  struct ExpRequest {
    std::string name;    // the expanded exp= domain-spec
    std::string domain;  // the current domain for the explanation's macros
  };
  std::vector<ExpRequest> exp_requests_;
  std::chrono::steady_clock::time_point started_{};
};

}  // namespace dmarc::spf2
