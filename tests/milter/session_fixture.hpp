// session_fixture.hpp - a Session over an in-memory zone, for tests/milter
//
//   auto e = engine("RejectFailures no\n");          // config lines added
//   Outcome o = run(e, Msg{});                          // one message
//
// world() is the zone: reject.example (p=reject), quarantine.example,
// none.example, each with "v=spf1 ip4:192.0.2.0/24 -all"; HELO
// helo.reject.example passes for 198.51.100.0/24; _dmarc.broken.example
// fails temporarily. Msg defaults to an SPF-aligned message from
// alice@reject.example at 192.0.2.10.
#pragma once

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dmarc/config/config.hpp"
#include "engine.hpp"
#include "session.hpp"
#include "support/static_resolver.hpp"

namespace dmarc::milter::fixture {

using namespace dmarc;

inline std::shared_ptr<test::StaticResolver> world() {
  auto dns = std::make_shared<test::StaticResolver>();
  dns->add_txt("_dmarc.reject.example", "v=DMARC1; p=reject");
  dns->add_txt("reject.example", "v=spf1 ip4:192.0.2.0/24 -all");
  dns->add("reject.example", RRType::A, "192.0.2.1");
  dns->add_txt("_dmarc.quarantine.example", "v=DMARC1; p=quarantine");
  dns->add_txt("quarantine.example", "v=spf1 ip4:192.0.2.0/24 -all");
  dns->add("quarantine.example", RRType::A, "192.0.2.1");
  dns->add_txt("_dmarc.none.example", "v=DMARC1; p=none");
  dns->add_txt("none.example", "v=spf1 ip4:192.0.2.0/24 -all");
  dns->add("none.example", RRType::A, "192.0.2.1");
  dns->add_txt("helo.reject.example", "v=spf1 ip4:198.51.100.0/24 -all");
  dns->add("helo.reject.example", RRType::A, "198.51.100.1");
  dns->fail("_dmarc.broken.example");
  dns->add("broken.example", RRType::A, "192.0.2.1");
  return dns;
}

inline std::shared_ptr<const Engine> engine(const std::string& extra = "", std::shared_ptr<test::StaticResolver> dns = world()) {
  auto cfg = parse_config("AuthservID mx.test.example\n" + extra, "test.conf");
  REQUIRE(cfg);
  auto e = Engine::build(cfg.value(), dns);
  REQUIRE(e);
  return e.value();
}

struct Msg {
  std::string ip = "192.0.2.10";
  std::string helo = "mail.reject.example";
  std::string mail_from = "alice@reject.example";
  std::string auth;
  std::vector<std::pair<std::string, std::string>> headers = {
      {"From", " Alice <alice@reject.example>"}, {"To", " bob@test.example"}, {"Subject", " hi"}};
  std::string body = "Hello\r\n";
};

inline Outcome run(const std::shared_ptr<const Engine>& e, const Msg& m) {
  Session s(e);
  s.connect("client.example", m.ip);
  s.helo(m.helo);
  s.envfrom(m.mail_from, m.auth, "QID1");
  for (const auto& [n, v] : m.headers) s.header(n, v);
  s.eoh();
  if (s.wants_body()) s.body(m.body);
  return s.eom("QID1");
}

}  // namespace dmarc::milter::fixture
