// fuzz_spf - SPF checks through libspf2 behind our DNS layer
// (src/adapters/spf), over a zone the input writes: records, names,
// macros, identities all hostile.
//
// Input: the first byte holds options; the rest is fields split at 0x1E
// (RS), 0x1D (GS) making the next byte literal (every byte reaches every
// field):
//   CLIENT-IP RS HELO RS MAIL-FROM RS RR RS RR ...
// each RR "NAME TYPE VALUE" (TYPE one of TXT A AAAA MX PTR CNAME, as in the
// RFC 7208 suite's zonedata; MX VALUE "10 mx.example"), or "NAME TIMEOUT"
// (queries of a type with no record listed so far time out) or "NAME
// SERVFAIL". A TXT VALUE is the record's text, any bytes. Option 0x01 sets a
// default explanation with macros, 0x02 checks HELO alone (check_helo).
//
// Invariants:
//   - no crash, no leak, no hang (libspf2 included: a crash or hang found
//     here gets a guard in the adapter and a regression test in
//     tests/spf/test_spf_bad_input.cpp);
//   - the result is one of RFC 7208 2.6's seven, with `problem` set for
//     temperror and permerror; temperror only when a DNS query failed
//     temporarily (the zone answers at once, so max_duration never ends a
//     check here); pass, fail, softfail and neutral only when some TXT
//     record beginning "v=spf1" was served;
//   - the DNS work is bounded (RFC 7208 4.6.4): dns_mechanisms and
//     void_lookups within their limits (one over only when the check
//     ended in permerror for it) and at most kMaxQueries queries per
//     check;
//   - an explanation is at most 255 printable US-ASCII octets, and only
//     for a fail;
//   - the same check again on the same verifier gives the same result
//     (no state kept from one check to the next; the explanation may
//     differ only through %{t}, the time).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_split.hpp"
#include "dmarc/adapters/spf.hpp"
#include "dmarc/core/domain.hpp"
#include "support/static_resolver.hpp"

using namespace dmarc;

namespace {

// Per check: 1 record lookup; 10 DNS terms, each with up to 10 MX or PTR
// names looked up again; the void lookups; HELO checks; exp=; slack for the
// include/redirect record lookups counted among the 10.
constexpr std::size_t kMaxQueries = 1 + 10 * 11 + 10 + 4;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_spf: property violated: %s\n", what);
    std::abort();
  }
}

class Zone : public Resolver {
 public:
  std::unique_ptr<test::StaticResolver> zone;
  std::size_t queries = 0;
  bool temp_failed = false;
  bool spf_served = false;

  DnsAnswer query(std::string_view name, RRType type) override {
    ++queries;
    DnsAnswer a = zone->query(name, type);
    if (a.status == DnsStatus::TempFail) temp_failed = true;
    if (type == RRType::TXT && a.status == DnsStatus::Ok)
      for (const auto& r : a.records)
        if (r.size() >= 6 && ascii_iequals(std::string_view(r).substr(0, 6), "v=spf1")) spf_served = true;
    return a;
  }
  void reset() {
    queries = 0;
    temp_failed = spf_served = false;
  }
};

using dmarc::fuzz::split;

void add_rr(test::StaticResolver& z, const std::string& rr) {
  std::size_t sp = rr.find(' ');
  if (sp == std::string::npos) return;
  std::string name = rr.substr(0, sp);
  std::size_t sp2 = rr.find(' ', sp + 1);
  std::string type = rr.substr(sp + 1, sp2 == std::string::npos ? std::string::npos : sp2 - sp - 1);
  std::string value = sp2 == std::string::npos ? "" : rr.substr(sp2 + 1);
  if (type == "TXT") z.add_txt(name, value);
  else if (type == "A") z.add(name, RRType::A, value);
  else if (type == "AAAA") z.add(name, RRType::AAAA, value);
  else if (type == "MX") z.add(name, RRType::MX, value);
  else if (type == "PTR") z.add(name, RRType::PTR, value);
  else if (type == "CNAME") z.add_cname(name, value);
  else if (type == "TIMEOUT") z.fail_unlisted(name);
  else if (type == "SERVFAIL") z.fail(name);
}

bool printable(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

void verify(const SpfCheckResult& r, const Zone& z, const SpfOptions& o) {
  switch (r.result) {
    case AuthResult::Pass:
    case AuthResult::Fail:
    case AuthResult::SoftFail:
    case AuthResult::Neutral:
      check(z.spf_served, "a result from a record never served");
      break;
    case AuthResult::None:
      break;
    case AuthResult::TempError:
      check(z.temp_failed, "temperror without a temporary DNS failure");
      check(!r.problem.empty(), "temperror without a problem");
      break;
    case AuthResult::PermError:
      check(!r.problem.empty(), "permerror without a problem");
      break;
    default:
      check(false, "a result RFC 7208 does not have");
  }
  check(z.queries <= kMaxQueries, "more DNS queries than RFC 7208 4.6.4 allows");
  check(r.dns_mechanisms <= o.max_dns_mechanisms + (r.result == AuthResult::PermError ? 1 : 0),
        "DNS terms beyond the limit");
  check(r.void_lookups <= o.max_void_lookups + (r.result == AuthResult::PermError ? 1 : 0),
        "void lookups beyond the limit");
  if (!r.explanation.empty()) {
    check(r.result == AuthResult::Fail, "an explanation for a result other than fail");
    check(r.explanation.size() <= 255 && printable(r.explanation), "explanation not 255 printable octets");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > 64 * 1024) return -1;
  static Zone zone;
  static SpfOptions plain_options, exp_options = [] {
    SpfOptions o;
    o.default_explanation = "See https://%{d}/why?s=%{S}&i=%{i}&h=%{h}&l=%{L}%{o}%{p}%{v}%{r}";
    o.receiver = "mx.test.example";
    return o;
  }();
  static std::unique_ptr<SpfVerifier> plain, with_exp;
  if (!plain) {
    auto a = SpfVerifier::create(zone, plain_options);
    auto b = SpfVerifier::create(zone, exp_options);
    if (!a || !b) std::abort();
    plain = std::move(a.value());
    with_exp = std::move(b.value());
  }
  const std::uint8_t opts = data[0];
  std::vector<std::string> f = split(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  f.resize(std::max<std::size_t>(f.size(), 3));
  zone.zone = std::make_unique<test::StaticResolver>();
  for (std::size_t i = 3; i < f.size(); ++i) add_rr(*zone.zone, f[i]);

  SpfVerifier& v = (opts & 1) ? *with_exp : *plain;
  const SpfOptions& o = (opts & 1) ? exp_options : plain_options;
  auto once = [&] {
    zone.reset();
    return (opts & 2) ? v.check_helo(f[0], f[1]) : v.check(f[0], f[1], f[2]);
  };
  SpfCheckResult r = once();
  if (std::getenv("FUZZ_SPF_VERBOSE"))
    std::fprintf(stderr, "spf=%d domain=%s problem=%s queries=%zu exp=%s\n", static_cast<int>(r.result), r.domain.c_str(),
                 r.problem.c_str(), zone.queries, r.explanation.c_str());
  verify(r, zone, o);
  SpfCheckResult again = once();
  // %{t} is the time of the check: explanations with it may differ.
  std::string_view all(reinterpret_cast<const char*>(data), size);
  bool timed = all.find("{t") != std::string_view::npos || all.find("{T") != std::string_view::npos;
  check(again.result == r.result && again.domain == r.domain && again.identity == r.identity &&
            (timed || again.explanation == r.explanation) && again.dns_mechanisms == r.dns_mechanisms &&
            again.void_lookups == r.void_lookups,
        "the same check twice gave different results");
  return 0;
}
