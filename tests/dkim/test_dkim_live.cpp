// test_dkim_live.cpp - the DKIM adapter over the real stack: LdnsResolver
// and CachedResolver against the test NSD (tests/data/zones/dkim.example.zone)
//
// Messages signed by dkimpy (tests/data/dkim/dkimpy-*.eml, made by
// tests/data/dkim/sign_with_dkimpy.py, an implementation independent of
// libopendkim) and messages signed in the test with libopendkim. A silent
// server (BlackHoleServer) and a SERVFAIL server (ScriptedDnsServer) give
// the temporary failures.
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>

#include "dkim_test_util.hpp"
#include "dmarc/adapters/cached_resolver.hpp"
#include "dmarc/adapters/ldns_resolver.hpp"
#include "support/nsd_server.hpp"

using dmarc::AuthResult;
using dmarc::CachedResolver;
using dmarc::LdnsResolver;
using namespace dmarc::test;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<LdnsResolver> ldns_for(const std::string& server, std::chrono::milliseconds timeout = 2000ms,
                                       unsigned tries = 2) {
  dmarc::LdnsResolverOptions o;
  o.nameservers = {server};
  o.timeout = timeout;
  o.tries = tries;
  auto r = LdnsResolver::create(o);
  if (!r) throw std::runtime_error(r.error());
  return std::shared_ptr<LdnsResolver>(std::move(*r));
}

SignSpec spec(const std::string& key, dkim_alg_t alg) {
  SignSpec s;
  s.key_file = key + ".pem";
  s.selector = key;
  s.alg = alg;
  return s;
}

}  // namespace

TEST_CASE("dkim live: dkimpy-signed messages pass through NSD, LdnsResolver and the cache", "[dkim][live]") {
  auto ldns = ldns_for(NsdServer::shared().address());
  CachedResolver cache(ldns);
  auto v = make_verifier(cache);
  for (const char* file : {"dkimpy-rsa2048.eml", "dkimpy-ed25519.eml"}) {
    for (std::size_t chunk : {std::size_t{0}, std::size_t{3}}) {
      auto res = verify(*v, data_message(file), chunk);
      INFO(file);
      REQUIRE(res.size() == 1);
      CHECK(res[0].result == AuthResult::Pass);
      CHECK(res[0].reason.empty());
      CHECK(res[0].domain == "dkim.example");
      CHECK(res[0].identity == "@dkim.example");
    }
  }
  auto stats = cache.stats();
  CHECK(stats.misses == 2);  // one query per key; the repeats came from the cache
  CHECK(stats.hits == 2);
  // The same message, altered in transit, fails.
  SplitMessage m = data_message("dkimpy-rsa2048.eml");
  m.body.insert(0, "X");
  auto res = verify(*v, m);
  REQUIRE(res.size() == 1);
  CHECK(res[0].result == AuthResult::Fail);
}

TEST_CASE("dkim live: keys from the zone - sizes, revoked, missing, two records", "[dkim][live]") {
  auto ldns = ldns_for(NsdServer::shared().address());
  auto v = make_verifier(*ldns);
  struct Case {
    std::string selector, key;
    dkim_alg_t alg;
    AuthResult result;
    std::string reason;
  };
  for (const Case& c : std::vector<Case>{
           {"rsa2048", "rsa2048", DKIM_SIGN_RSASHA256, AuthResult::Pass, ""},
           {"rsa4096", "rsa4096", DKIM_SIGN_RSASHA256, AuthResult::Pass, ""},  // split into 4 strings
           {"rsa1024", "rsa1024", DKIM_SIGN_RSASHA256, AuthResult::Pass, ""},
           {"rsa512", "rsa512", DKIM_SIGN_RSASHA256, AuthResult::Policy,
            "RSA key of 512 bits is below 1024 (RFC 8301 3.2)"},
           {"rsa2048", "rsa2048", DKIM_SIGN_RSASHA1, AuthResult::Policy, "rsa-sha1 is not accepted (RFC 8301 3.1)"},
           {"revoked", "rsa2048", DKIM_SIGN_RSASHA256, AuthResult::PermError, "key revoked (empty p=)"},
           {"missing", "rsa2048", DKIM_SIGN_RSASHA256, AuthResult::PermError, "no key record (nxdomain)"},
           {"nodata", "rsa2048", DKIM_SIGN_RSASHA256, AuthResult::PermError, "no key record (nodata)"},
           {"twice", "rsa2048", DKIM_SIGN_RSASHA256, AuthResult::PermError, "more than one key record"},
       }) {
    SignSpec s = spec(c.key, c.alg);
    s.selector = c.selector;
    auto res = verify(*v, with_signature(base_message(true), sign(base_message(), s)), 11);
    INFO(c.selector << " " << c.key);
    REQUIRE(res.size() == 1);
    CHECK(res[0].result == c.result);
    CHECK(res[0].reason == c.reason);
  }
}

TEST_CASE("dkim live: a key query that times out is a temperror", "[dkim][live][timeout]") {
  BlackHoleServer hole;
  auto ldns = ldns_for(hole.address(), 300ms, 1);
  CachedResolver cache(ldns);
  auto v = make_verifier(cache);
  SplitMessage m = data_message("dkimpy-rsa2048.eml");
  auto start = std::chrono::steady_clock::now();
  auto res = verify(*v, m);
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(res.size() == 1);
  CHECK(res[0].result == AuthResult::TempError);
  CHECK(res[0].reason.rfind("key lookup failed: timeout", 0) == 0);
  CHECK(took < 5s);
  // TempFail is not cached: the next message asks again (and fails again).
  res = verify(*v, m);
  CHECK(res.at(0).result == AuthResult::TempError);
  CHECK(cache.stats().hits == 0);
}

TEST_CASE("dkim live: SERVFAIL for the key is a temperror", "[dkim][live]") {
  ScriptedDnsServer servfail([](const std::string& q) { return dns_reply(q, 2); });
  auto ldns = ldns_for(servfail.address(), 1000ms, 1);
  auto v = make_verifier(*ldns);
  auto res = verify(*v, data_message("dkimpy-ed25519.eml"));
  REQUIRE(res.size() == 1);
  CHECK(res[0].result == AuthResult::TempError);
  CHECK(res[0].reason.find("SERVFAIL") != std::string::npos);
  CHECK(servfail.queries() >= 1);
}
