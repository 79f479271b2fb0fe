// test_spf_bad_input.cpp - hostile and broken input: a DNS failure for every
// kind of lookup SPF makes, the macro patterns behind libspf2's CVEs, huge,
// numerous, binary and looping records. Each case states its documented
// result (the table in the SPF section of the man page); none may crash,
// and the ASan/UBSan build runs them all.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dmarc/adapters/spf.hpp"
#include "support/static_resolver.hpp"

using namespace dmarc;
using dmarc::test::StaticResolver;

namespace {

// Faults - a StaticResolver with failures that say what they are
// ("timeout", "SERVFAIL", "FORMERR"), as LdnsResolver's do.
class Faults : public Resolver {
 public:
  StaticResolver zone;
  void fail(const std::string& name, RRType type, DnsStatus status, std::string why) {
    faults_[{name, type}] = {status, std::move(why)};
  }
  DnsAnswer query(std::string_view name, RRType type) override {
    if (auto f = faults_.find({std::string(name), type}); f != faults_.end()) {
      DnsAnswer a;
      a.status = f->second.first;
      a.why = f->second.second;
      return a;
    }
    return zone.query(name, type);
  }

 private:
  std::map<std::pair<std::string, RRType>, std::pair<DnsStatus, std::string>> faults_;
};

struct Fault {
  DnsStatus status;
  const char* why;
  AuthResult fatal;  // what a failure that stops the check gives
};
const Fault kFaults[] = {
    {DnsStatus::TempFail, "timeout contacting 127.0.0.1:53", AuthResult::TempError},
    {DnsStatus::TempFail, "SERVFAIL from 127.0.0.1:53", AuthResult::TempError},
    {DnsStatus::PermFail, "FORMERR from 127.0.0.1:53", AuthResult::PermError},
};

// The test world of the DNS-failure cases: each sender domain exercises one
// lookup kind; the failing (name, type) is injected per case.
void world(StaticResolver& z) {
  z.add_txt("txt.example", "v=spf1 +all");
  z.add_txt("a.example", "v=spf1 a:host.example -all");
  z.add("host.example", RRType::A, "192.0.2.10");
  z.add("host.example", RRType::AAAA, "2001:db8::10");
  z.add_txt("mx.example", "v=spf1 mx:mail.example -all");
  z.add("mail.example", RRType::MX, "10 mx1.mail.example");
  z.add("mx1.mail.example", RRType::A, "192.0.2.11");
  z.add_txt("ptr.example", "v=spf1 ptr:ptr.example -all");
  z.add("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", RRType::PTR,
        "client.ptr.example");
  z.add("1.2.0.192.in-addr.arpa", RRType::PTR, "client.ptr.example");
  z.add("client.ptr.example", RRType::A, "192.0.2.1");
  z.add_txt("exists.example", "v=spf1 exists:%{l}.list.example -all");
  z.add("bob.list.example", RRType::A, "127.0.0.2");
  z.add_txt("include.example", "v=spf1 include:inc.example -all");
  z.add_txt("inc.example", "v=spf1 ip4:198.51.100.0/24");
  z.add_txt("redirect.example", "v=spf1 redirect=target.example");
  z.add_txt("target.example", "v=spf1 -all");
  z.add_txt("exp.example", "v=spf1 -all exp=why.example");
  z.add_txt("why.example", "not from %{i}");
  z.add_txt("pmacro.example", "v=spf1 exists:%{p}.ok.example -all");
  z.add("unknown.ok.example", RRType::A, "127.0.0.2");            // %{p} when the PTR lookup fails
  z.add("client.ptr.example.ok.example", RRType::A, "127.0.0.2");  // %{p} validated
}

struct DnsCase {
  const char* kind;      // the lookup that fails
  const char* sender;
  const char* client;
  const char* name;      // the failing name
  RRType type;
  bool stops;            // RFC 7208: the failure ends the check
  AuthResult otherwise;  // the result when it does not
  const char* why;       // the clause
};
const DnsCase kDnsCases[] = {
    {"TXT (the SPF record)", "bob@txt.example", "192.0.2.1", "txt.example", RRType::TXT, true, AuthResult::None,
     "4.4: DNS error in the record lookup"},
    {"A (a mechanism)", "bob@a.example", "192.0.2.1", "host.example", RRType::A, true, AuthResult::None,
     "5 (para. 8): a DNS error ends the check"},
    {"AAAA (a mechanism, IPv6 client)", "bob@a.example", "2001:db8::1", "host.example", RRType::AAAA, true,
     AuthResult::None, "5 (para. 8)"},
    {"MX (mx mechanism)", "bob@mx.example", "192.0.2.1", "mail.example", RRType::MX, true, AuthResult::None,
     "5 (para. 8), 5.4"},
    {"A of an MX host", "bob@mx.example", "192.0.2.1", "mx1.mail.example", RRType::A, true, AuthResult::None,
     "5.4: the address lookups are part of the mechanism"},
    {"PTR (ptr mechanism)", "bob@ptr.example", "192.0.2.1", "1.2.0.192.in-addr.arpa", RRType::PTR, false,
     AuthResult::Fail, "5.5: a DNS error in the PTR lookup: the mechanism does not match"},
    {"PTR (ptr mechanism, IPv6 client)", "bob@ptr.example", "2001:db8::1",
     "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", RRType::PTR, false,
     AuthResult::Fail, "5.5"},
    {"A of a PTR name (ptr validation)", "bob@ptr.example", "192.0.2.1", "client.ptr.example", RRType::A, false,
     AuthResult::Fail, "5.5: that name is skipped"},
    {"A (exists mechanism)", "bob@exists.example", "192.0.2.1", "bob.list.example", RRType::A, true,
     AuthResult::None, "5 (para. 8), 5.7"},
    {"TXT of an include: target", "bob@include.example", "192.0.2.1", "inc.example", RRType::TXT, true,
     AuthResult::None, "5.2: temperror of the included check is temperror"},
    {"TXT of a redirect= target", "bob@redirect.example", "192.0.2.1", "target.example", RRType::TXT, true,
     AuthResult::None, "6.1 with 4.4"},
    {"TXT of the exp= target", "bob@exp.example", "192.0.2.1", "why.example", RRType::TXT, false, AuthResult::Fail,
     "6.2: any DNS problem: no explanation"},
    {"PTR for %{p}", "bob@pmacro.example", "192.0.2.1", "1.2.0.192.in-addr.arpa", RRType::PTR, false,
     AuthResult::Pass, "7.3: %{p} becomes \"unknown\""},
};

std::unique_ptr<SpfVerifier> verifier(Resolver& dns) {
  auto v = SpfVerifier::create(dns);
  REQUIRE(v);
  return std::move(v.value());
}

}  // namespace

TEST_CASE("spf bad input: a DNS failure in every kind of lookup", "[spf][bad-input]") {
  // Control: without faults every case gives its no-fault result.
  {
    Faults dns;
    world(dns.zone);
    auto v = verifier(dns);
    CHECK(v->check("192.0.2.1", "h.example", "bob@txt.example").result == AuthResult::Pass);
    CHECK(v->check("192.0.2.10", "h.example", "bob@a.example").result == AuthResult::Pass);
    CHECK(v->check("192.0.2.11", "h.example", "bob@mx.example").result == AuthResult::Pass);
    CHECK(v->check("192.0.2.1", "h.example", "bob@ptr.example").result == AuthResult::Pass);
    CHECK(v->check("192.0.2.1", "h.example", "bob@exists.example").result == AuthResult::Pass);
    SpfCheckResult r = v->check("192.0.2.1", "h.example", "bob@exp.example");
    CHECK(r.explanation == "not from 192.0.2.1");
    CHECK(v->check("192.0.2.1", "h.example", "bob@pmacro.example").result == AuthResult::Pass);
  }
  for (const auto& c : kDnsCases) {
    for (const auto& f : kFaults) {
      INFO(c.kind << " fails with " << f.why << " (" << c.why << ")");
      Faults dns;
      world(dns.zone);
      dns.fail(c.name, c.type, f.status, f.why);
      auto v = verifier(dns);
      SpfCheckResult r = v->check(c.client, "h.example", c.sender);
      if (c.stops) {
        CHECK(r.result == f.fatal);
        CHECK(r.problem.find(f.why) != std::string::npos);
        CHECK(r.problem.find(c.name) != std::string::npos);
      } else {
        CHECK(r.result == c.otherwise);
        CHECK(r.explanation.empty());
      }
    }
  }
}

TEST_CASE("spf bad input: a CNAME loop at the record is a DNS error", "[spf][bad-input]") {
  StaticResolver dns;
  dns.add_cname("loop.example", "loop2.example");
  dns.add_cname("loop2.example", "loop.example");
  auto v = verifier(dns);
  SpfCheckResult r = v->check("192.0.2.1", "h.example", "a@loop.example");
  CHECK(r.result == AuthResult::TempError);
  CHECK(r.problem == "TXT lookup of loop.example: CNAME loop");
}

namespace {
struct RecordCase {
  const char* what;
  std::string record;
  const char* sender;
  AuthResult want;
  const char* problem;  // a substring of the problem, or "" (nothing required)
};
}  // namespace

TEST_CASE("spf bad input: macro patterns of the libspf2 CVEs", "[spf][bad-input][cve]") {
  // The patterns that reached the vulnerable code in libspf2 <= 1.2.10:
  //   CVE-2021-20314  stack overflow compiling a literal near the 511-octet
  //                   limit (explanation or term) - fixed in Debian 7.1
  //   CVE-2021-33912  sprintf overrun URL-encoding (%{L}, %{S}...) - fixed 7.1
  //   CVE-2021-33913  heap overflow with the reverse transformer and long
  //                   labels / many delimiters - fixed 7.1
  //   CVE-2023-42118  integer underflow after ~127 macros in one term - NOT
  //                   fixed in Debian 1.2.10-7.2 (test_spf_libspf2.cpp)
  // Here no macro reaches libspf2: they are checked (RFC 7208 7.1) and
  // expanded by us, names cut to 253 octets (7.3), explanations to 255.
  const std::string lp(64, '%');  // 64 octets that all need URL escaping
  const std::string many_d = [] {
    std::string s;
    for (int i = 0; i < 127; ++i) s += "%{d}";
    return s;
  }();
  const std::vector<RecordCase> cases = {
      {"CVE-2021-20314: 127 macros then a long literal in the explanation", "v=spf1 -all exp=long.exp.example",
       "bob@example.net", AuthResult::Fail, ""},
      {"CVE-2021-33912: %{L} URL-escaping of 64 '%' (x3 each) in a name", "v=spf1 exists:%{L}.%{L}.%{L}.example -all",
       "@example.net", AuthResult::Fail, ""},
      {"CVE-2021-33912: %{S}%{L} URL-escaped in the explanation", "v=spf1 -all exp=url.exp.example", "@example.net",
       AuthResult::Fail, ""},
      {"CVE-2021-33913: reverse with many delimiters and long labels",
       "v=spf1 exists:%{lr-+=_.}.%{l1r-}.%{d9r}.%{ir}.%{hr}.x.example -all", "@example.net", AuthResult::Fail, ""},
      {"CVE-2023-42118: 127 %{d} then 3700 octets in one term", "v=spf1 a:" + many_d + std::string(3700, 'a'),
       "bob@example.net", AuthResult::PermError, "does not end in a valid top label"},
      {"CVE-2023-42118, syntactically valid variant", "v=spf1 a:" + many_d + std::string(3700, 'a') + ".x -all",
       "bob@example.net", AuthResult::Fail, ""},
      {"CVE-2023-42118 style %{l0r-}: a zero transformer (RFC 7208 7.3: MUST be nonzero)",
       "v=spf1 exists:%{l0r-}.x.example -all", "bob@example.net", AuthResult::PermError, "MUST be nonzero"},
      {"%{l0}: zero again", "v=spf1 exists:%{l0}.x.example -all", "bob@example.net", AuthResult::PermError,
       "MUST be nonzero"},
      {"transformer digits far past any part count", "v=spf1 exists:%{d99999999999999999999r}.x.example -all",
       "bob@example.net", AuthResult::Fail, ""},
      {"unterminated macro", "v=spf1 exists:%{l.x.example -all", "bob@example.net", AuthResult::PermError,
       "malformed macro"},
      {"unknown macro letter", "v=spf1 exists:%{z}.x.example -all", "bob@example.net", AuthResult::PermError,
       "unknown macro letter"},
      {"%{c} outside explanation text (RFC 7208 7.3)", "v=spf1 exists:%{c}.x.example -all", "bob@example.net",
       AuthResult::PermError, "outside explanation text"},
      {"lone % at the end", "v=spf1 exists:x.example% -all", "bob@example.net", AuthResult::PermError,
       "at the end of a macro-string"},
  };
  for (const auto& c : cases) {
    INFO(c.what << ": " << c.record.substr(0, 120));
    StaticResolver dns;
    dns.add_txt("example.net", c.record);
    dns.add_txt("long.exp.example", many_d + std::string(3700, 'x'));
    dns.add_txt("url.exp.example", "%{S}%{L}%{S}%{L}%{S}%{L}%{S}%{L} %{C} %{R}");
    auto v = verifier(dns);
    const std::string sender = std::string(c.sender) == "@example.net" ? lp + "@example.net" : c.sender;
    SpfCheckResult r = v->check("2001:db8::1", "%%%%-.-.-.-.-.-.-.-.-", sender);
    CHECK(r.result == c.want);
    if (*c.problem != '\0') CHECK(r.problem.find(c.problem) != std::string::npos);
    CHECK(r.explanation.size() <= 255);
    for (char ch : r.explanation) CHECK((ch >= 0x20 && ch <= 0x7e));
  }
}

TEST_CASE("spf bad input: huge, numerous, binary and non-ASCII records", "[spf][bad-input]") {
  std::string huge_valid = "v=spf1";
  for (int i = 0; i < 4000; ++i) huge_valid += " ip4:198.51.100." + std::to_string(i % 256);
  huge_valid += " ip4:192.0.2.1 -all";  // ~80 KB, valid RFC 7208 syntax
  std::string huge_garbage = "v=spf1 " + std::string(60000, '!');
  std::string nul_record("v=spf1 ip4:192.0.2.1\0 -all", 26);
  const std::vector<RecordCase> cases = {
      {"80 KB valid record (4002 ip4 terms): over libspf2's 511-octet mechanism area (SPF_MAX_MECH_LEN)", huge_valid,
       "bob@example.net", AuthResult::PermError, "libspf2"},
      {"60 KB of '!' (would overflow libspf2's unsigned short error count)", huge_garbage, "bob@example.net",
       AuthResult::PermError, "unknown mechanism"},
      {"NUL byte in the record", nul_record, "bob@example.net", AuthResult::PermError, "control character"},
      {"non-ASCII (UTF-8) in a domain-spec", "v=spf1 a:ex\xc3\xa4mple.example -all", "bob@example.net",
       AuthResult::PermError, "non-ASCII"},
      {"CR inside the record", "v=spf1 ip4:192.0.2.1\r -all", "bob@example.net", AuthResult::PermError,
       "control character"},
      {"include loop a -> b -> a", "v=spf1 include:b.example -all", "bob@example.net", AuthResult::PermError,
       "more than 10 DNS-querying terms"},
      {"include of itself", "v=spf1 include:example.net -all", "bob@example.net", AuthResult::PermError, ""},
      {"redirect to itself", "v=spf1 redirect=example.net", "bob@example.net", AuthResult::PermError, ""},
      {"11 nested includes", "v=spf1 include:i1.example -all", "bob@example.net", AuthResult::PermError,
       "more than 10 DNS-querying terms"},
      {"10 nested includes (the limit)", "v=spf1 include:i2.example -all", "bob@example.net", AuthResult::Pass, ""},
      {"a 300-octet name from macros (cut on the left, RFC 7208 7.3)",
       "v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.%{d} -all", "x123456789012345678901234567890123456789012345678901234"
       "5678@example.net", AuthResult::Fail, ""},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    StaticResolver dns;
    dns.add_txt("example.net", c.record);
    dns.add_txt("b.example", "v=spf1 include:example.net -all");
    for (int i = 1; i <= 11; ++i) {
      dns.add_txt("i" + std::to_string(i) + ".example",
                  i < 11 ? "v=spf1 include:i" + std::to_string(i + 1) + ".example -all" : "v=spf1 +all");
    }
    auto v = verifier(dns);
    SpfCheckResult r = v->check("192.0.2.1", "h.example", c.sender);
    CHECK(r.result == c.want);
    if (*c.problem != '\0') CHECK(r.problem.find(c.problem) != std::string::npos);
  }
}

TEST_CASE("spf bad input: many TXT records at one name (RFC 7208 4.5)", "[spf][bad-input]") {
  StaticResolver dns;
  for (int i = 0; i < 500; ++i) dns.add_txt("many.example", "verification-token-" + std::to_string(i));
  dns.add_txt("many.example", "v=spf1 ip4:192.0.2.1 -all");
  dns.add_txt("many.example", std::string("binary\0junk\xff", 12));
  for (int i = 0; i < 500; ++i) dns.add_txt("two.example", "token-" + std::to_string(i));
  dns.add_txt("two.example", "v=spf1 +all");
  dns.add_txt("two.example", "V=SPF1 -all");
  dns.add_txt("spf10.example", "v=spf10 +all");      // not "v=spf1" + space
  dns.add_txt("glued.example", "v=spf1ip4:192.0.2.1");  // strings glued without a space
  auto v = verifier(dns);
  CHECK(v->check("192.0.2.1", "h.example", "bob@many.example").result == AuthResult::Pass);
  SpfCheckResult r = v->check("192.0.2.1", "h.example", "bob@two.example");
  CHECK(r.result == AuthResult::PermError);
  CHECK(r.problem == "2 SPF records at two.example");
  CHECK(v->check("192.0.2.1", "h.example", "bob@spf10.example").result == AuthResult::None);
  CHECK(v->check("192.0.2.1", "h.example", "bob@glued.example").result == AuthResult::None);
}

TEST_CASE("spf bad input: hostile identities", "[spf][bad-input]") {
  StaticResolver dns;
  dns.add_txt("example.net", "v=spf1 exists:%{l}.%{h}.%{o}.x.example -all exp=e.example");
  dns.add_txt("e.example", "%{s} %{h} %{l}");
  auto v = verifier(dns);
  const std::string long_local(1000, 'l');
  const std::vector<std::pair<std::string, std::string>> ids = {
      {long_local + "@example.net", "h.example"},
      {"a\x01\x7f\xff%{d}@example.net", "h\r\n.example"},
      {"\"quoted@at\"@example.net", ""},
      {"% %% %_ %-@example.net", "%{l}"},
  };
  for (const auto& [from, helo] : ids) {
    INFO(from.substr(0, 40) << " / " << helo);
    SpfCheckResult r = v->check("192.0.2.1", helo, from);
    CHECK(r.result == AuthResult::Fail);
    CHECK(r.explanation.size() <= 255);
    for (char ch : r.explanation) CHECK((ch >= 0x20 && ch <= 0x7e));
  }
  // A HELO that is not a domain: the HELO identity is none (RFC 7208 4.3).
  CHECK(v->check("192.0.2.1", "h\r\n.example", "").result == AuthResult::None);
  CHECK(v->check_helo("192.0.2.1", "").result == AuthResult::None);
}
