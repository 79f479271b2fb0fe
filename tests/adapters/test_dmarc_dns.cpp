// test_dmarc_dns.cpp - the DMARC core over real DNS: LdnsResolver + CachedResolver
// against NSD serving tests/data/zones/example.zone.
#include <catch2/catch.hpp>

#include "dmarc/adapters/cached_resolver.hpp"
#include "dmarc/adapters/ldns_resolver.hpp"
#include "dmarc/core/evaluate.hpp"
#include "support/nsd_server.hpp"

using namespace dmarc;
using dmarc::test::NsdServer;

namespace {
struct World {
  std::unique_ptr<LdnsResolver> ldns;
  std::unique_ptr<CachedResolver> cache;
  World() {
    LdnsResolver::Options o;
    o.nameservers = {NsdServer::shared().address()};
    o.timeout = std::chrono::milliseconds(2000);
    auto r = LdnsResolver::create(o);
    REQUIRE(r);
    ldns = std::move(r.value());
    cache = std::make_unique<CachedResolver>(*ldns);
  }
};
MessageAuth msg(std::string from, std::string spf_domain = {}) {
  MessageAuth m;
  m.author_domain = std::move(from);
  if (!spf_domain.empty()) m.spf = SpfInput{AuthResult::Pass, std::move(spf_domain), SpfScope::MailFrom};
  return m;
}
}  // namespace

TEST_CASE("dmarc-dns: p, sp and np through NSD (RFC 9989 4.7)", "[dmarc-dns]") {
  World w;
  Verdict v = evaluate_dmarc(*w.cache, msg("good.example"), {});
  CHECK(v.result == DmarcResult::Fail);
  CHECK(v.policy_source == PolicySource::Domain);
  CHECK(v.disposition == Disposition::Reject);
  v = evaluate_dmarc(*w.cache, msg("mail.good.example"), {});
  CHECK(v.policy_source == PolicySource::Subdomain);
  CHECK(v.disposition == Disposition::Quarantine);
  CHECK(v.author_domain_exists);
  v = evaluate_dmarc(*w.cache, msg("ghost.good.example"), {});
  CHECK(v.policy_source == PolicySource::NonExistent);
  CHECK(v.disposition == Disposition::Reject);
  v = evaluate_dmarc(*w.cache, msg("nothing.example"), {});
  CHECK(v.result == DmarcResult::None);
}

TEST_CASE("dmarc-dns: relaxed alignment with tree-walk org domains", "[dmarc-dns]") {
  World w;
  Verdict v = evaluate_dmarc(*w.cache, msg("good.example", "bounces.mail.good.example"), {});
  CHECK(v.result == DmarcResult::Pass);
  v = evaluate_dmarc(*w.cache, msg("giant.bank.example", "mega.bank.example"), {});
  CHECK(v.result == DmarcResult::Fail);
  CHECK(v.org_domain == "giant.bank.example");
  v = evaluate_dmarc(*w.cache, msg("a.org.deep.example", "b.org.deep.example"), {});
  CHECK(v.result == DmarcResult::Pass);
  CHECK(v.org_domain == "org.deep.example");
}

TEST_CASE("dmarc-dns: the cache serves repeated walks", "[dmarc-dns]") {
  World w;
  (void)evaluate_dmarc(*w.cache, msg("x.y.z.good.example"), {});
  auto before = w.cache->stats();
  (void)evaluate_dmarc(*w.cache, msg("x.y.z.good.example"), {});
  auto after = w.cache->stats();
  CHECK(after.misses == before.misses);
  CHECK(after.hits > before.hits);
}
