// test_spf.cpp - SpfVerifier behaviour: identities, results, explanations,
// the RFC 7208 4.6.4 limits, DNS error mapping, exceptions, threading.
// DNS is a StaticResolver; tests/spf/test_spf_nsd.cpp runs the real stack.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dmarc/adapters/spf.hpp"
#include "support/static_resolver.hpp"

using namespace dmarc;
using dmarc::test::StaticResolver;

namespace {

std::unique_ptr<SpfVerifier> verifier(Resolver& dns, SpfOptions o = {}) {
  auto v = SpfVerifier::create(dns, std::move(o));
  REQUIRE(v);
  return std::move(v.value());
}

std::size_t count_queries(const StaticResolver& dns, RRType type) {
  std::size_t n = 0;
  for (const auto& q : dns.queries()) n += q.second == type ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("spf: MAIL FROM identity, scope and domain (RFC 7208 2.4)", "[spf]") {
  StaticResolver dns;
  dns.add_txt("example.net", "v=spf1 ip4:192.0.2.0/24 -all");
  auto v = verifier(dns);
  SpfCheckResult r = v->check("192.0.2.7", "mx.example.org", "alice@example.net");
  CHECK(r.result == AuthResult::Pass);
  CHECK(r.scope == SpfScope::MailFrom);
  CHECK(r.domain == "example.net");
  CHECK(r.identity == "alice@example.net");
  CHECK(r.input().domain == "example.net");
  CHECK(r.input().scope == SpfScope::MailFrom);
  r = v->check("198.51.100.7", "mx.example.org", "alice@example.net");
  CHECK(r.result == AuthResult::Fail);
  CHECK(r.explanation.empty());  // no exp= and no default explanation configured
}

TEST_CASE("spf: null MAIL FROM checks postmaster@HELO (RFC 7208 2.4)", "[spf]") {
  StaticResolver dns;
  dns.add_txt("mx.example.org", "v=spf1 ip4:192.0.2.1 -all exp=why.example.org");
  dns.add_txt("why.example.org", "sender %{s} local %{l} domain %{d} helo %{h}");
  dns.add_txt("example.net", "v=spf1 +all");
  auto v = verifier(dns);
  SpfCheckResult r = v->check("192.0.2.1", "mx.example.org", "");
  CHECK(r.result == AuthResult::Pass);
  CHECK(r.scope == SpfScope::Helo);
  CHECK(r.domain == "mx.example.org");
  CHECK(r.identity == "postmaster@mx.example.org");
  r = v->check("192.0.2.2", "mx.example.org", "");
  CHECK(r.result == AuthResult::Fail);
  CHECK(r.explanation == "sender postmaster@mx.example.org local postmaster domain mx.example.org helo mx.example.org");
  // check_helo: the HELO identity on its own (2.3), whatever MAIL FROM is.
  r = v->check_helo("192.0.2.2", "mx.example.org");
  CHECK(r.result == AuthResult::Fail);
  CHECK(r.scope == SpfScope::Helo);
  CHECK(r.identity == "mx.example.org");
}

TEST_CASE("spf: MAIL FROM without a local part is postmaster (RFC 7208 4.3)", "[spf]") {
  StaticResolver dns;
  dns.add_txt("example.net", "v=spf1 -all exp=e.example.net");
  dns.add_txt("e.example.net", "%{l}");
  auto v = verifier(dns);
  SpfCheckResult r = v->check("192.0.2.1", "mx.example.org", "@example.net");
  CHECK(r.result == AuthResult::Fail);
  CHECK(r.identity == "postmaster@example.net");
  CHECK(r.explanation == "postmaster");
}

TEST_CASE("spf: malformed or single-label domains give none without a query (RFC 7208 4.3)", "[spf]") {
  StaticResolver dns;
  auto v = verifier(dns);
  for (const char* from : {"a@localhost", "a@[192.0.2.1]", "a@exa..mple.net", "a@192.0.2.1", "a@",
                           "a@x234567890123456789012345678901234567890123456789012345678901234.example"}) {
    INFO(from);
    SpfCheckResult r = v->check("192.0.2.1", "mx.example.org", from);
    CHECK(r.result == AuthResult::None);
    CHECK_FALSE(r.problem.empty());
  }
  CHECK(dns.query_count() == 0);
  // A trailing dot is not part of the name.
  dns.add_txt("example.net", "v=spf1 +all");
  CHECK(v->check("192.0.2.1", "mx.example.org", "a@example.net.").result == AuthResult::Pass);
}

TEST_CASE("spf: client address forms", "[spf]") {
  StaticResolver dns;
  dns.add_txt("example.net", "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 -all");
  auto v = verifier(dns);
  CHECK(v->check("192.0.2.1", "h.example", "a@example.net").result == AuthResult::Pass);
  CHECK(v->check("::ffff:192.0.2.1", "h.example", "a@example.net").result == AuthResult::Pass);  // RFC 7208 5
  CHECK(v->check("[192.0.2.1]", "h.example", "a@example.net").result == AuthResult::Pass);
  CHECK(v->check("2001:db8::1", "h.example", "a@example.net").result == AuthResult::Pass);
  CHECK(v->check("IPv6:2001:db8::1", "h.example", "a@example.net").result == AuthResult::Pass);
  CHECK(v->check("2001:db8::2", "h.example", "a@example.net").result == AuthResult::Fail);
  SpfCheckResult r = v->check("not-an-address", "h.example", "a@example.net");
  CHECK(r.result == AuthResult::PermError);
  CHECK(r.problem == "client address is not an IP address");
}

TEST_CASE("spf: a loopback client is evaluated like any other", "[spf]") {
  // libspf2's SPF_request_query_mailfrom() passes 127/8 and ::1 whatever the
  // record says ("localhost always gets a free ride"); RFC 7208 has no such
  // rule, and a relay re-injecting mail from 127.0.0.1 must not make every
  // sender pass.
  StaticResolver dns;
  dns.add_txt("example.net", "v=spf1 ip4:192.0.2.0/24 -all");
  auto v = verifier(dns);
  CHECK(v->check("127.0.0.1", "localhost", "a@example.net").result == AuthResult::Fail);
  CHECK(v->check("::1", "localhost", "a@example.net").result == AuthResult::Fail);
}

TEST_CASE("spf: every result value (RFC 7208 2.6)", "[spf]") {
  StaticResolver dns;
  dns.add_txt("pass.example", "v=spf1 +all");
  dns.add_txt("fail.example", "v=spf1 -all");
  dns.add_txt("soft.example", "v=spf1 ~all");
  dns.add_txt("neutral.example", "v=spf1 ?all");
  dns.add_txt("empty.example", "v=spf1");
  dns.add_txt("other.example", "google-site-verification=abc");
  dns.add_txt("bad.example", "v=spf1 foo:bar -all");
  dns.fail("down.example");
  auto v = verifier(dns);
  auto result = [&](const char* d) { return v->check("192.0.2.1", "h.example", std::string("a@") + d).result; };
  CHECK(result("pass.example") == AuthResult::Pass);
  CHECK(result("fail.example") == AuthResult::Fail);
  CHECK(result("soft.example") == AuthResult::SoftFail);
  CHECK(result("neutral.example") == AuthResult::Neutral);
  CHECK(result("empty.example") == AuthResult::Neutral);  // 4.7: falling off the end
  CHECK(result("other.example") == AuthResult::None);     // 4.5: no SPF record
  CHECK(result("nowhere.example") == AuthResult::None);   // 4.3: NXDOMAIN
  CHECK(result("bad.example") == AuthResult::PermError);  // 4.6: syntax error
  CHECK(result("down.example") == AuthResult::TempError); // 4.4: DNS error
}

TEST_CASE("spf: explanations (RFC 7208 6.2)", "[spf]") {
  StaticResolver dns;
  dns.add_txt("example.net", "v=spf1 ip4:192.0.2.1 -all exp=explain.example.net");
  dns.add_txt("explain.example.net", "%{i} is not allowed for %{S}, see http://%{r}/%{L}");
  dns.add_txt("plain.example.net", "v=spf1 -all");
  dns.add_txt("soft.example.net", "v=spf1 ~all exp=explain.example.net");
  SpfOptions o;
  o.receiver = "mx.receiver.example";
  auto v = verifier(dns, o);
  SpfCheckResult r = v->check("192.0.2.9", "h.example", "a b@example.net");
  CHECK(r.result == AuthResult::Fail);
  CHECK(r.explanation == "192.0.2.9 is not allowed for a%20b%40example.net, see http://mx.receiver.example/a%20b");
  // No exp= and no default: no explanation. Not a fail: no explanation.
  CHECK(v->check("192.0.2.9", "h.example", "a@plain.example.net").explanation.empty());
  CHECK(v->check("192.0.2.9", "h.example", "a@soft.example.net").explanation.empty());

  SpfOptions with_default;
  with_default.default_explanation = "See https://spf.example/why?s=%{S}&ip=%{C}";
  auto d = verifier(dns, with_default);
  r = d->check("2001:db8::9", "h.example", "a@plain.example.net");
  CHECK(r.result == AuthResult::Fail);
  CHECK(r.explanation == "See https://spf.example/why?s=a%40plain.example.net&ip=2001%3Adb8%3A%3A9");

  SpfOptions bad;
  bad.default_explanation = "broken %x";
  CHECK_FALSE(SpfVerifier::create(dns, bad));
}

TEST_CASE("spf: the exp= record is looked up once, after the result, for a fail only (RFC 7208 6.2)", "[spf]") {
  StaticResolver dns;
  // Every (sub-)evaluation of libspf2 asks for an explanation; only the
  // final fail's exp= may cost a query.
  dns.add_txt("example.net", "v=spf1 include:inc.example.net ~all exp=top.example.net");
  dns.add_txt("inc.example.net", "v=spf1 -all exp=inc-why.example.net");
  dns.add_txt("top.example.net", "top says no to %{i}");
  dns.add_txt("inc-why.example.net", "never shown");
  dns.add_txt("hard.example.net", "v=spf1 include:inc.example.net -all exp=top.example.net");
  auto exp_queries = [&] {
    std::size_t n = 0;
    for (const auto& q : dns.queries()) n += (q.first == "top.example.net" || q.first == "inc-why.example.net") ? 1 : 0;
    return n;
  };
  auto v = verifier(dns);
  SpfCheckResult r = v->check("192.0.2.1", "h.example", "a@example.net");
  CHECK(r.result == AuthResult::SoftFail);
  CHECK(r.explanation.empty());
  CHECK(exp_queries() == 0);
  dns.clear_log();
  r = v->check("192.0.2.1", "h.example", "a@hard.example.net");
  CHECK(r.result == AuthResult::Fail);
  CHECK(r.explanation == "top says no to 192.0.2.1");
  CHECK(exp_queries() == 1);
  CHECK(dns.queries().back().first == "top.example.net");  // after everything else
}

namespace {
// SlowResolver - answers like its zone, after a delay.
class SlowResolver : public Resolver {
 public:
  StaticResolver zone;
  std::chrono::milliseconds delay{0};
  DnsAnswer query(std::string_view name, RRType type) override {
    std::this_thread::sleep_for(delay);
    return zone.query(name, type);
  }
};
}  // namespace

TEST_CASE("spf: a check that takes too long ends in temperror (RFC 7208 4.6.4)", "[spf]") {
  SlowResolver dns;
  dns.zone.add_txt("example.net", "v=spf1 ptr:a.example ptr:b.example ptr:c.example a:d.example -all");
  dns.zone.add("1.2.0.192.in-addr.arpa", RRType::PTR, "x1.example");
  dns.delay = std::chrono::milliseconds(30);
  SpfOptions o;
  o.max_duration = std::chrono::milliseconds(100);
  auto v = verifier(dns, o);
  SpfCheckResult r = v->check("192.0.2.1", "h.example", "a@example.net");
  CHECK(r.result == AuthResult::TempError);
  CHECK(r.problem == "SPF check took longer than 100 ms (RFC 7208 4.6.4)");
  dns.delay = std::chrono::milliseconds(0);
  CHECK(v->check("192.0.2.1", "h.example", "a@example.net").result == AuthResult::Fail);
}

TEST_CASE("spf: the 10 DNS-term limit counts across include and redirect (RFC 7208 4.6.4)", "[spf]") {
  StaticResolver dns;
  for (int i = 1; i <= 12; ++i) dns.add("h" + std::to_string(i) + ".example", RRType::A, "198.51.100.1");
  dns.add_txt("ten.example", "v=spf1 a:h1.example a:h2.example a:h3.example a:h4.example a:h5.example "
                             "a:h6.example a:h7.example a:h8.example a:h9.example a:h10.example -all");
  dns.add_txt("eleven.example", "v=spf1 a:h1.example a:h2.example a:h3.example a:h4.example a:h5.example "
                                "a:h6.example a:h7.example a:h8.example a:h9.example a:h10.example "
                                "a:h11.example -all");
  // libspf2 counts per record: 5 here and 6 in the included record would
  // pass it. The whole check counts (4.6.4), include itself included.
  dns.add_txt("split.example", "v=spf1 a:h1.example a:h2.example a:h3.example a:h4.example "
                               "include:inner.example -all");
  dns.add_txt("inner.example", "v=spf1 a:h5.example a:h6.example a:h7.example a:h8.example a:h9.example "
                               "a:h10.example -all");
  dns.add_txt("redir.example", "v=spf1 a:h1.example a:h2.example a:h3.example a:h4.example a:h5.example "
                               "redirect=tail.example");
  dns.add_txt("tail.example", "v=spf1 a:h6.example a:h7.example a:h8.example a:h9.example ip4:192.0.2.1");
  auto v = verifier(dns);

  SpfCheckResult r = v->check("192.0.2.1", "h.example", "a@ten.example");
  CHECK(r.result == AuthResult::Fail);
  CHECK(r.dns_mechanisms == 10);

  dns.clear_log();
  r = v->check("192.0.2.1", "h.example", "a@eleven.example");
  CHECK(r.result == AuthResult::PermError);
  CHECK(r.problem == "more than 10 DNS-querying terms (RFC 7208 4.6.4)");
  CHECK(count_queries(dns, RRType::A) == 10);  // the 11th is never asked

  r = v->check("192.0.2.1", "h.example", "a@split.example");
  CHECK(r.result == AuthResult::PermError);  // 4 + include + 6 = 11

  r = v->check("192.0.2.1", "h.example", "a@redir.example");
  CHECK(r.result == AuthResult::Pass);  // 5 + redirect + 4 = 10
  CHECK(r.dns_mechanisms == 10);

  SpfOptions lower;
  lower.max_dns_mechanisms = 4;
  auto v4 = verifier(dns, lower);
  CHECK(v4->check("192.0.2.1", "h.example", "a@redir.example").result == AuthResult::PermError);
}

TEST_CASE("spf: the 2 void-lookup limit is enforced by our DNS layer (RFC 7208 4.6.4)", "[spf]") {
  // libspf2 1.2.10 has no void-lookup limit (test_spf_libspf2.cpp shows it).
  StaticResolver dns;
  dns.add("real.example", RRType::MX, "10 mx.real.example");  // mx.real.example: no address (not a term)
  dns.add("empty.example", RRType::TXT, "no address records here");
  dns.add_txt("two.example", "v=spf1 a:v1.example mx:v2.example ?all");
  dns.add_txt("three.example", "v=spf1 a:v1.example mx:v2.example exists:v3.example ?all");
  dns.add_txt("nodata.example", "v=spf1 a:empty.example a:empty.example a:empty.example ?all");
  dns.add_txt("targets.example", "v=spf1 mx:real.example a:v1.example ptr:v2.example ?all");
  auto v = verifier(dns);

  SpfCheckResult r = v->check("192.0.2.1", "h.example", "a@two.example");
  CHECK(r.result == AuthResult::Neutral);
  CHECK(r.void_lookups == 2);

  r = v->check("192.0.2.1", "h.example", "a@three.example");
  CHECK(r.result == AuthResult::PermError);
  CHECK(r.void_lookups == 3);
  CHECK(r.problem == "more than 2 void lookups (RFC 7208 4.6.4), the last A v3.example");

  // NODATA counts like NXDOMAIN.
  CHECK(v->check("192.0.2.1", "h.example", "a@nodata.example").result == AuthResult::PermError);

  // An MX target without addresses is not a term (only the MX query is);
  // the ptr term's PTR query is (here it finds nothing: void).
  r = v->check("192.0.2.1", "h.example", "a@targets.example");
  CHECK(r.result == AuthResult::Neutral);
  CHECK(r.void_lookups == 2);  // a:v1 and the PTR query (no PTR record)

  SpfOptions strict;
  strict.max_void_lookups = 1;
  auto s = verifier(dns, strict);
  CHECK(s->check("192.0.2.1", "h.example", "a@two.example").result == AuthResult::PermError);
}

TEST_CASE("spf: the exp= lookup and %{p} do not count toward the limits", "[spf]") {
  StaticResolver dns;
  dns.add_txt("exp.example", "v=spf1 a:v1.example a:v2.example -all exp=nowhere.example");
  dns.add_txt("p.example", "v=spf1 exists:%{p}.x.example exists:%{p}.y.example exists:%{p}.z.example "
                           "a:v1.example a:v2.example -all");
  auto v = verifier(dns);
  SpfCheckResult r = v->check("192.0.2.1", "h.example", "a@exp.example");
  CHECK(r.result == AuthResult::Fail);  // 2 voids, then a void exp lookup: not a third
  r = v->check("192.0.2.1", "h.example", "a@p.example");
  // %{p} (no PTR: "unknown") costs a PTR query outside the count; the
  // exists terms count as terms and as voids.
  CHECK(r.result == AuthResult::PermError);
  CHECK(r.dns_mechanisms == 3);
  CHECK(r.void_lookups == 3);
}

TEST_CASE("spf: DNS status maps through dns_error_kind()", "[spf]") {
  StaticResolver dns;
  dns.add_txt("t.example", "v=spf1 a:temp.example -all");
  dns.add_txt("p.example", "v=spf1 a:perm.example -all");
  dns.fail("temp.example", DnsStatus::TempFail);
  dns.fail("perm.example", DnsStatus::PermFail);
  dns.fail("permtxt.example", DnsStatus::PermFail);
  auto v = verifier(dns);
  REQUIRE(dns_error_kind(DnsStatus::TempFail) == DnsErrorKind::Temporary);
  REQUIRE(dns_error_kind(DnsStatus::PermFail) == DnsErrorKind::Permanent);
  SpfCheckResult r = v->check("192.0.2.1", "h.example", "a@t.example");
  CHECK(r.result == AuthResult::TempError);
  CHECK(r.problem == "A lookup of temp.example: injected failure");
  CHECK(v->check("192.0.2.1", "h.example", "a@p.example").result == AuthResult::PermError);
  CHECK(v->check("192.0.2.1", "h.example", "a@permtxt.example").result == AuthResult::PermError);
}

namespace {
class ThrowingResolver : public Resolver {
 public:
  explicit ThrowingResolver(bool bad_alloc) : bad_alloc_(bad_alloc) {}
  DnsAnswer query(std::string_view name, RRType type) override {
    DnsAnswer a;
    a.status = DnsStatus::NxDomain;
    if (type == RRType::TXT && name == "example.net") {
      a.status = DnsStatus::Ok;
      a.records = {"v=spf1 a:boom.example -all"};
    } else if (name == "boom.example") {
      if (bad_alloc_) throw std::bad_alloc();
      throw std::runtime_error("resolver exploded");
    }
    return a;
  }

 private:
  bool bad_alloc_;
};
}  // namespace

TEST_CASE("spf: exceptions from the resolver never cross libspf2", "[spf]") {
  ThrowingResolver throws(false);
  auto v = verifier(throws);
  SpfCheckResult r = v->check("192.0.2.1", "h.example", "a@example.net");
  CHECK(r.result == AuthResult::TempError);
  CHECK(r.problem == "A lookup of boom.example: resolver threw: resolver exploded");

  // bad_alloc unwinds to the caller, after libspf2 has returned.
  ThrowingResolver oom(true);
  auto w = verifier(oom);
  CHECK_THROWS_AS(w->check("192.0.2.1", "h.example", "a@example.net"), std::bad_alloc);
  // The verifier stays usable.
  CHECK(w->check("192.0.2.1", "h.example", "a@nothing.example").result == AuthResult::None);
}

TEST_CASE("spf: a verifier is reusable; the state of one check does not leak into the next", "[spf]") {
  StaticResolver dns;
  dns.add_txt("over.example", "v=spf1 a:v1.example a:v2.example a:v3.example ?all");
  dns.add_txt("ok.example", "v=spf1 a:v4.example ?all");
  dns.add_txt("down.example", "v=spf1 a:x.down.example -all");
  dns.fail("x.down.example");
  auto v = verifier(dns);
  for (int i = 0; i < 3; ++i) {
    CHECK(v->check("192.0.2.1", "h.example", "a@over.example").result == AuthResult::PermError);
    CHECK(v->check("192.0.2.1", "h.example", "a@down.example").result == AuthResult::TempError);
    SpfCheckResult r = v->check("192.0.2.1", "h.example", "a@ok.example");
    CHECK(r.result == AuthResult::Neutral);
    CHECK(r.void_lookups == 1);
    CHECK(r.dns_mechanisms == 1);
  }
}

TEST_CASE("spf: separate verifiers in parallel threads agree with a serial run", "[spf][threads]") {
  // THREADING in spf.hpp: one verifier per thread. libspf2 keeps no mutable
  // global state on this path (its resolver layers are ours, log handlers
  // are set once before any thread starts); run it for real, under ASan.
  auto world = [](StaticResolver& dns) {
    dns.add_txt("a.example", "v=spf1 ip4:192.0.2.0/25 include:b.example -all exp=e.example");
    dns.add_txt("b.example", "v=spf1 mx:b.example a:%{l}.users.example ~all");
    dns.add("b.example", RRType::MX, "10 mx.b.example");
    dns.add("mx.b.example", RRType::A, "192.0.2.200");
    dns.add("bob.users.example", RRType::A, "192.0.2.201");
    dns.add_txt("e.example", "%{i} not allowed for %{l}");
  };
  const std::vector<std::string> ips = {"192.0.2.1", "192.0.2.200", "192.0.2.201", "192.0.2.202", "2001:db8::1"};
  const std::vector<std::string> senders = {"alice@a.example", "bob@a.example", "carol@b.example"};
  std::vector<std::string> serial;
  {
    StaticResolver dns;
    world(dns);
    auto v = verifier(dns);
    for (const auto& ip : ips) {
      for (const auto& s : senders) {
        SpfCheckResult r = v->check(ip, "h.example", s);
        serial.push_back(std::string(to_token(r.result)) + "/" + r.explanation);
      }
    }
  }
  constexpr int kThreads = 4, kRounds = 50;
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      StaticResolver dns;  // not thread-safe: one per thread
      world(dns);
      auto created = SpfVerifier::create(dns);
      if (!created) {
        ++mismatches;
        return;
      }
      auto& v = *created;
      for (int round = 0; round < kRounds; ++round) {
        std::size_t i = 0;
        for (const auto& ip : ips) {
          for (const auto& s : senders) {
            SpfCheckResult r = v->check(ip, "h.example", s);
            if (std::string(to_token(r.result)) + "/" + r.explanation != serial[i++]) ++mismatches;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(mismatches == 0);
  // The world does what it should (index = address * 3 + sender).
  CHECK(serial[0] == "pass/");  // ip4:192.0.2.0/25
  CHECK(serial[2] == "softfail/");  // carol@b.example from 192.0.2.1: ~all
  CHECK(serial[3] == "pass/");  // 192.0.2.200: include:b.example, its mx
  CHECK(serial[6] == "fail/192.0.2.201 not allowed for alice");
  CHECK(serial[7] == "pass/");  // bob: a:%{l}.users.example in the include
}
