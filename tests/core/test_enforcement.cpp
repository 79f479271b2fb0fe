// test_enforcement.cpp - A-R formatting, IP networks, forwarders, message decisions
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "dmarc/config/config.hpp"
#include "dmarc/core/auth_results.hpp"
#include "dmarc/core/forwarders.hpp"
#include "dmarc/core/ip_net.hpp"
#include "dmarc/core/message_policy.hpp"
#include "support/static_resolver.hpp"

using namespace dmarc;

TEST_CASE("ip_net: addresses, networks, mapped IPv4", "[ipnet]") {
  auto n = parse_ip_net("192.0.2.0/24");
  REQUIRE(n);
  CHECK(n->contains(*parse_ip("192.0.2.255")));
  CHECK_FALSE(n->contains(*parse_ip("192.0.3.0")));
  CHECK(n->contains(*parse_ip("::ffff:192.0.2.9")));  // RFC 4291 2.5.5.2
  auto v6 = parse_ip_net("2001:db8::/32");
  REQUIRE(v6);
  CHECK(v6->contains(*parse_ip("2001:db8:ffff::1")));
  CHECK_FALSE(v6->contains(*parse_ip("2001:db9::1")));
  CHECK_FALSE(v6->contains(*parse_ip("192.0.2.1")));
  CHECK(parse_ip_net("198.51.100.7")->prefix == 32);
  CHECK(parse_ip_net("192.0.2.7/24")->has_host_bits());
  CHECK_FALSE(parse_ip_net("192.0.2.0/33"));
  CHECK_FALSE(parse_ip_net("192.0.2.0/"));
  CHECK_FALSE(parse_ip_net("example.org"));
  CHECK_FALSE(parse_ip(""));
  CHECK(parse_ip("[2001:db8::1]"));
  CHECK(parse_ip("IPv6:2001:db8::1"));
  auto odd = parse_ip_net("10.0.0.0/3");
  REQUIRE(odd);
  CHECK(odd->contains(*parse_ip("31.255.255.255")));
  CHECK_FALSE(odd->contains(*parse_ip("32.0.0.0")));
}

TEST_CASE("auth_results: a full field, RFC 8601 syntax", "[ar]") {
  AuthResultsFields f;
  f.authserv_id = "mx.example.net";
  f.spf = ArSpf{AuthResult::Pass, SpfScope::MailFrom, "example.com", ""};
  f.dkim.push_back(ArDkim{AuthResult::Pass, "example.com", "sel1", "abcd1234", "2048-bit key"});
  f.dmarc.push_back(ArDmarc{DmarcResult::Pass, "example.com", "reject", "p=reject sp=reject dis=none"});
  CHECK(format_auth_results(f) ==
        " mx.example.net;\n\tspf=pass smtp.mailfrom=example.com;\n\tdkim=pass (2048-bit key) header.d=example.com "
        "header.s=sel1 header.b=abcd1234;\n\tdmarc=pass (p=reject sp=reject dis=none) header.from=example.com "
        "policy.dmarc=reject");
  AuthResultsFields none;
  none.authserv_id = "mx";
  none.dkim_checked = false;
  CHECK(format_auth_results(none) == " mx; none");
}

TEST_CASE("auth_results: untrusted values cannot inject header text", "[ar][security]") {
  // HELO, MAIL FROM, d= and s= come from the network.
  AuthResultsFields f;
  f.authserv_id = "mx";
  f.spf = ArSpf{AuthResult::Fail, SpfScope::Helo, "evil\r\nX-Injected: yes", ""};
  f.dkim.push_back(ArDkim{AuthResult::Fail, "a.example;dmarc=pass", "s\"el", "", "reason (with) parens\\"});
  std::string v = format_auth_results(f);
  CHECK(v.find("\r") == std::string::npos);
  CHECK(v.find("\nX-Injected") == std::string::npos);
  CHECK(v.find("smtp.helo=\"evil??X-Injected: yes\"") != std::string::npos);
  CHECK(v.find("header.d=\"a.example;dmarc=pass\"") != std::string::npos);
  CHECK(v.find("header.s=\"s\\\"el\"") != std::string::npos);
  CHECK(v.find("(reason \\(with\\) parens\\\\)") != std::string::npos);
  // Only the folds we write contain a line break.
  std::size_t breaks = 0;
  for (char c : v) breaks += c == '\n';
  CHECK(breaks == 2);
  CHECK(ar_value(std::string(1000, 'a')).size() == kMaxValueLength);
  CHECK(ar_value(std::string("nul\0byte", 8)) == "\"nul?byte\"");
  CHECK(ar_pvalue("user@example.com") == "user@example.com");
  CHECK(ar_pvalue("\"odd local\"@example.com") == "\"\\\"odd local\\\"@example.com\"");
  CHECK(ar_value("") == "\"\"");
}

TEST_CASE("auth_results: authserv-id of existing fields", "[ar]") {
  CHECK(authserv_id_of(" mx.example.net; spf=pass") == "mx.example.net");
  CHECK(authserv_id_of("\r\n\t(comment (nested)) mx.example.net 1; none") == "mx.example.net");
  CHECK(authserv_id_of(" \"quoted.example\"; none") == "quoted.example");
  CHECK(authserv_id_of("mx.example.net;dkim=pass") == "mx.example.net");
  CHECK_FALSE(authserv_id_of(" (unterminated"));
  CHECK_FALSE(authserv_id_of("   "));
  CHECK_FALSE(authserv_id_of(" ; none"));
}

namespace {
Verdict verdict(std::string dom, DmarcResult r, Disposition d) {
  Verdict v;
  v.author_domain = std::move(dom);
  v.result = r;
  v.disposition = d;
  return v;
}
}  // namespace

TEST_CASE("message_policy: strictest disposition wins, settings apply", "[policy]") {
  EnforcementSettings s;
  std::vector<Verdict> vs = {verdict("a.example", DmarcResult::Fail, Disposition::Quarantine),
                             verdict("b.example", DmarcResult::Fail, Disposition::Reject),
                             verdict("c.example", DmarcResult::Pass, Disposition::None)};
  MessageDecision d = decide_message(vs, s);
  CHECK(d.action == Action::Reject);
  CHECK(d.rcode == "550");
  CHECK(d.xcode == "5.7.1");
  CHECK(d.text == "Message rejected by the DMARC policy of b.example");
  CHECK(d.decisive == 1);
  CHECK(d.reason == "dmarc_reject");

  vs[1].disposition = Disposition::None;
  d = decide_message(vs, s);
  CHECK(d.action == Action::Quarantine);
  CHECK(d.mark_header);
  CHECK_FALSE(d.hold);
  s.quarantine = QuarantineAction::Both;
  d = decide_message(vs, s);
  CHECK(d.hold);
  CHECK(d.mark_header);
  s.quarantine = QuarantineAction::Hold;
  CHECK_FALSE(decide_message(vs, s).mark_header);

  s.reject_failures = false;
  d = decide_message(vs, s);
  CHECK(d.action == Action::Accept);
  CHECK(d.reason == "report_only");
}

TEST_CASE("message_policy: DNS temperror follows DNSFailureAction", "[policy]") {
  EnforcementSettings s;
  std::vector<Verdict> vs = {verdict("t.example", DmarcResult::TempError, Disposition::None)};
  MessageDecision d = decide_message(vs, s);
  CHECK(d.action == Action::Accept);
  CHECK(d.reason == "dns_temperror");
  s.dns_failure = FallbackAction::TempFail;
  d = decide_message(vs, s);
  CHECK(d.action == Action::TempFail);
  CHECK(d.rcode == "451");
  CHECK(d.xcode == "4.7.1");
  CHECK(d.text.find("t.example") != std::string::npos);
  // A reject for another domain is stronger than a temperror.
  vs.push_back(verdict("r.example", DmarcResult::Fail, Disposition::Reject));
  CHECK(decide_message(vs, s).action == Action::Reject);
  CHECK(decide_message({}, s).action == Action::Accept);
}

TEST_CASE("message_policy: messages without a usable From", "[policy]") {
  EnforcementSettings s;
  CHECK(decide_bad_from(FromProblem::Missing, s).action == Action::Reject);
  CHECK(decide_bad_from(FromProblem::Missing, s).reason == "no_from");
  s.bad_from = FallbackAction::Accept;
  CHECK(decide_bad_from(FromProblem::Unparseable, s).action == Action::Accept);
  // RejectMultiValueFrom and RequiredHeaders reject whatever BadFromAction says.
  CHECK(decide_bad_from(FromProblem::Several, s).action == Action::Reject);
  CHECK(decide_bad_from(FromProblem::HeaderCounts, s).action == Action::Reject);
  s.bad_from = FallbackAction::TempFail;
  CHECK(decide_bad_from(FromProblem::TooManyDomains, s).rcode == "451");
  CHECK(fill_reply_text("bad {domain}\r\n%", "x.example") == "bad x.example??%");
}

TEST_CASE("forwarders: IP, host names by FCrDNS, DKIM domains", "[forwarders]") {
  ForwarderList l;
  CHECK_FALSE(l.add("192.0.2.0/24"));
  CHECK_FALSE(l.add("2001:db8:f::/48"));
  CHECK_FALSE(l.add(".fwd.example"));
  CHECK_FALSE(l.add("relay.example"));
  CHECK_FALSE(l.add("dkim:lists.example"));
  CHECK(l.add("192.0.2.0/99"));
  CHECK(l.add("dkim:"));
  CHECK(l.add("bad..name"));

  test::StaticResolver dns;
  dns.add("7.100.51.198.in-addr.arpa", RRType::PTR, "mx1.fwd.example");
  dns.add("mx1.fwd.example", RRType::A, "198.51.100.7");
  dns.add("8.100.51.198.in-addr.arpa", RRType::PTR, "mx2.fwd.example");
  dns.add("mx2.fwd.example", RRType::A, "198.51.100.99");  // does not confirm
  dns.add("9.100.51.198.in-addr.arpa", RRType::PTR, "relay.example");
  dns.add("relay.example", RRType::A, "198.51.100.9");

  auto m = l.match(dns, "192.0.2.44", {});
  REQUIRE(m);
  CHECK(m->kind == ForwarderMatch::Kind::Ip);
  CHECK(m->entry == "192.0.2.0/24");
  CHECK(l.match(dns, "2001:db8:f::25", {}));
  m = l.match(dns, "198.51.100.7", {});
  REQUIRE(m);
  CHECK(m->kind == ForwarderMatch::Kind::Host);
  CHECK(m->detail == "mx1.fwd.example");
  CHECK_FALSE(l.match(dns, "198.51.100.8", {}));  // PTR without forward confirmation
  CHECK(l.match(dns, "198.51.100.9", {}));
  CHECK_FALSE(l.match(dns, "203.0.113.1", {}));   // no PTR
  std::vector<DkimInput> sigs = {{AuthResult::Fail, "lists.example", "s"}};
  CHECK_FALSE(l.match(dns, "203.0.113.1", sigs));  // the signature must pass
  sigs.push_back({AuthResult::Pass, "lists.example", "s"});
  m = l.match(dns, "203.0.113.1", sigs);
  REQUIRE(m);
  CHECK(m->kind == ForwarderMatch::Kind::Dkim);
  dns.fail("1.113.0.203.in-addr.arpa");
  CHECK_FALSE(l.match(dns, "203.0.113.1", {}));  // DNS failure: not a forwarder
}

TEST_CASE("config: milter settings, errors with file and line", "[config]") {
  auto r = parse_config("Socket unix:/run/dmarc/s.sock\nUMask 027\nIgnoreHosts 10.0.0.0/8 192.0.2.1\n"
                        "HoldQuarantinedMessages yes\nTrustedForwarders 192.0.2.0/24 dkim:lists.example\n",
                        "m.conf");
  REQUIRE(r);
  CHECK(r->socket == "unix:/run/dmarc/s.sock");
  CHECK(r->umask == 027);
  CHECK(r->ignore_hosts.contains("10.1.2.3"));
  CHECK_FALSE(r->ignore_hosts.contains("127.0.0.1"));
  CHECK(r->enforcement.quarantine == QuarantineAction::Both);
  CHECK_FALSE(r->forwarders.empty());
  REQUIRE(r->warnings.size() == 1);
  CHECK(r->warnings[0].str() == "m.conf:4: HoldQuarantinedMessages (OpenDMARC) read as QuarantineAction both");

  auto bad = parse_config("\nSocket tcp:25\n", "m.conf");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().str().rfind("m.conf:2: Socket must be", 0) == 0);
  bad = parse_config("UMask 099\n", "m.conf");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().line == 1);
  bad = parse_config("#\nIgnoreHosts 10.0.0.0/8, 300.1.1.1\n", "m.conf");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().str() == "m.conf:2: IgnoreHosts: not an IP address or network: '300.1.1.1'");
  bad = parse_config("AuthservID two words\n", "m.conf");
  REQUIRE_FALSE(bad);
  bad = parse_config("QuarantineHeader X-Bad:Name\n", "m.conf");
  REQUIRE_FALSE(bad);

  // A list file: its own errors name that file and line.
  char path[] = "/tmp/dmarc-fwd-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  {
    std::ofstream f(path);
    f << "# forwarders\n192.0.2.0/24\n\nfwd.example  # a comment\nnot..valid\n";
  }
  bad = parse_config(std::string("TrustedForwarders ") + path + "\n", "m.conf");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().str() == std::string(path) + ":5: TrustedForwarders: not a host name: 'not..valid'");
  {
    std::ofstream f(path);
    f << "192.0.2.0/24\nfwd.example\n";
  }
  r = parse_config(std::string("TrustedForwarders ") + path + "\n", "m.conf");
  REQUIRE(r);
  test::StaticResolver none;
  CHECK(r->forwarders.match(none, "192.0.2.3", {}));
  std::remove(path);
  bad = parse_config("IgnoreHosts /nonexistent/list\n", "m.conf");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().str().rfind("m.conf:1: IgnoreHosts: cannot read /nonexistent/list", 0) == 0);
}
