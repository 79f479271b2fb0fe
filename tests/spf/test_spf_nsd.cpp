// test_spf_nsd.cpp - SPF over the production DNS stack: SpfVerifier on
// CachedResolver on LdnsResolver, against NSD serving the "SPF" block of
// tests/data/zones/example.zone; a silent server for timeouts and a
// scripted one for SERVFAIL.
#include <catch2/catch.hpp>

#include <chrono>

#include "dmarc/adapters/cached_resolver.hpp"
#include "dmarc/adapters/ldns_resolver.hpp"
#include "dmarc/adapters/spf.hpp"
#include "dmarc/core/evaluate.hpp"
#include "support/nsd_server.hpp"

using namespace dmarc;

namespace {

std::unique_ptr<LdnsResolver> ldns_for(const std::string& server, std::chrono::milliseconds timeout) {
  LdnsResolver::Options o;
  o.nameservers = {server};
  o.timeout = timeout;
  o.tries = 1;
  auto r = LdnsResolver::create(o);
  REQUIRE(r);
  return std::move(r.value());
}

struct Stack {
  std::unique_ptr<LdnsResolver> ldns = ldns_for(test::NsdServer::shared().address(), std::chrono::milliseconds(2000));
  CachedResolver cache{*ldns};
  std::unique_ptr<SpfVerifier> spf;
  Stack() {
    auto v = SpfVerifier::create(cache);
    REQUIRE(v);
    spf = std::move(v.value());
  }
};

Verdict dmarc_for(Resolver& dns, const std::string& author, const SpfCheckResult& spf) {
  MessageAuth m;
  m.author_domain = author;
  m.spf = spf.input();
  return evaluate_dmarc(dns, m, {});
}

}  // namespace

TEST_CASE("spf-nsd: an aligned SPF pass makes DMARC pass; a fail does not", "[spf][nsd]") {
  Stack s;
  SpfCheckResult r = s.spf->check("192.0.2.33", "mta.sender.example", "news@aligned.spf.example");
  CHECK(r.result == AuthResult::Pass);
  CHECK(r.domain == "aligned.spf.example");
  Verdict v = dmarc_for(s.cache, "aligned.spf.example", r);
  CHECK(v.result == DmarcResult::Pass);
  CHECK(v.spf_alignment == Alignment::Pass);

  r = s.spf->check("198.51.100.7", "mta.forger.example", "news@aligned.spf.example");
  CHECK(r.result == AuthResult::Fail);
  v = dmarc_for(s.cache, "aligned.spf.example", r);
  CHECK(v.result == DmarcResult::Fail);
  CHECK(v.disposition == Disposition::Reject);
}

TEST_CASE("spf-nsd: include, mx and a CNAME'd a: through real DNS", "[spf][nsd]") {
  Stack s;
  SpfCheckResult r = s.spf->check("192.0.2.48", "h.example", "a@aligned.spf.example");
  CHECK(r.result == AuthResult::Pass);  // include:inc -> mx:mx.spf.example -> host1
  CHECK(r.dns_mechanisms == 2);
  r = s.spf->check("192.0.2.49", "h.example", "a@aligned.spf.example");
  CHECK(r.result == AuthResult::Pass);  // a:alias.spf.example, a CNAME to host2
  CHECK(r.dns_mechanisms == 3);
  // The second round is answered from the cache.
  const CacheStats before = s.cache.stats();
  CHECK(s.spf->check("192.0.2.49", "h.example", "a@aligned.spf.example").result == AuthResult::Pass);
  CHECK(s.cache.stats().hits > before.hits);
  CHECK(s.cache.stats().misses == before.misses);
}

TEST_CASE("spf-nsd: a record in two character-strings, IPv6 client", "[spf][nsd]") {
  Stack s;
  CHECK(s.spf->check("2001:db8:5::25", "h.example", "a@split.spf.example").result == AuthResult::Pass);
  CHECK(s.spf->check("192.0.2.70", "h.example", "a@split.spf.example").result == AuthResult::Pass);
  CHECK(s.spf->check("2001:db8:6::25", "h.example", "a@split.spf.example").result == AuthResult::Fail);
}

TEST_CASE("spf-nsd: NXDOMAIN answers count as void lookups", "[spf][nsd]") {
  Stack s;
  SpfCheckResult r = s.spf->check("192.0.2.1", "h.example", "a@voids.spf.example");
  CHECK(r.result == AuthResult::PermError);
  CHECK(r.void_lookups == 3);
}

TEST_CASE("spf-nsd: HELO identity and the null reverse-path", "[spf][nsd]") {
  Stack s;
  SpfCheckResult r = s.spf->check("192.0.2.80", "helo.spf.example", "");
  CHECK(r.result == AuthResult::Pass);
  CHECK(r.scope == SpfScope::Helo);
  CHECK(r.identity == "postmaster@helo.spf.example");
  CHECK(s.spf->check_helo("192.0.2.81", "helo.spf.example").result == AuthResult::Fail);
  CHECK(s.spf->check("192.0.2.80", "h.example", "a@nothing.spf.example").result == AuthResult::None);
}

TEST_CASE("spf-nsd: a server that never answers gives temperror", "[spf][nsd][timeout]") {
  test::BlackHoleServer hole;
  auto ldns = ldns_for(hole.address(), std::chrono::milliseconds(200));
  CachedResolver cache(*ldns);
  auto v = SpfVerifier::create(cache);
  REQUIRE(v);
  const auto start = std::chrono::steady_clock::now();
  SpfCheckResult r = (*v)->check("192.0.2.33", "h.example", "a@aligned.spf.example");
  CHECK(r.result == AuthResult::TempError);
  CHECK(r.problem.find("TXT lookup of aligned.spf.example") != std::string::npos);
  CHECK(r.problem.find("timeout") != std::string::npos);
  // One lookup, one try: the check stops at the first failure.
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
}

TEST_CASE("spf-nsd: SERVFAIL gives temperror", "[spf][nsd]") {
  test::ScriptedDnsServer servfail([](const std::string& q) { return test::dns_reply(q, 2); });
  auto ldns = ldns_for(servfail.address(), std::chrono::milliseconds(1000));
  auto v = SpfVerifier::create(*ldns);
  REQUIRE(v);
  SpfCheckResult r = (*v)->check("192.0.2.33", "h.example", "a@aligned.spf.example");
  CHECK(r.result == AuthResult::TempError);
  CHECK(r.problem.find("SERVFAIL") != std::string::npos);
  CHECK(servfail.queries() >= 1);
}
