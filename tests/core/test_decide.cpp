// test_decide.cpp - the whole per-message decision in the core (decide.hpp)
//
// decide() takes the facts the milter gathered and returns the verdict; the
// session tests (tests/milter) drive it through Session, the end-to-end
// tests through a real Postfix. Here each rule is checked on facts alone,
// with DNS from a StaticResolver.
#include <catch2/catch.hpp>

#include "dmarc/core/decide.hpp"
#include "support/static_resolver.hpp"

using namespace dmarc;
using dmarc::test::StaticResolver;

namespace {

StaticResolver world() {
  StaticResolver dns;
  dns.add_txt("_dmarc.reject.example", "v=DMARC1; p=reject");
  dns.add_txt("_dmarc.quarantine.example", "v=DMARC1; p=quarantine");
  dns.add_txt("_dmarc.test.example", "v=DMARC1; p=reject; t=y");
  dns.add("nodmarc.example", RRType::A, "192.0.2.1");
  return dns;
}

MessageFacts facts(std::string from_field, AuthResult spf = AuthResult::Fail, std::string spf_domain = "evil.example") {
  MessageFacts f;
  f.queue_id = "QID9";
  f.client_ip = "203.0.113.9";
  f.helo = "mx.evil.example";
  f.mail_from = "x@" + spf_domain;
  f.rcpt_to = {"bob@rcpt.example"};
  f.from_fields = {std::move(from_field)};
  f.header_counts[0] = 1;
  f.header_counts[1] = 1;
  SpfFacts s;
  s.result = spf;
  s.domain = spf_domain;
  s.identity = f.mail_from;
  f.spf = s;
  return f;
}

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("decide: sloppy From fields are evaluated for their one domain", "[decide]") {
  StaticResolver dns = world();
  DecideOptions o;
  o.authserv_id = "mx.test.example";
  // No DMARC record: accepted, as a well-formed From would be.
  for (std::string field : {" Smith, John <j@nodmarc.example>", " user@nodmarc.example <user@nodmarc.example>",
                            " \"Name\" user@nodmarc.example"}) {
    CAPTURE(field);
    MessageVerdict v = decide(dns, facts(field), o);
    CHECK(v.decision.action == Action::Accept);
    REQUIRE(v.verdicts.size() == 1);
    CHECK(v.verdicts[0].author_domain == "nodmarc.example");
    CHECK(v.verdicts[0].result == DmarcResult::None);
    CHECK(has(v.log_line, "from_note=malformed:"));
  }
  // With a policy, the policy applies: a sloppy field is no way around it.
  MessageVerdict v = decide(dns, facts(" Smith, John <j@reject.example>"), o);
  CHECK(v.decision.action == Action::Reject);
  v = decide(dns, facts(" Smith, John <j@reject.example>", AuthResult::Pass, "reject.example"), o);
  CHECK(v.decision.action == Action::Accept);
  CHECK(v.verdicts[0].result == DmarcResult::Pass);
  // RFC 5322 4.4 obsolete list syntax parses strictly: no note.
  v = decide(dns, facts(" , a@reject.example, ,", AuthResult::Pass, "reject.example"), o);
  CHECK(v.decision.action == Action::Accept);
  CHECK_FALSE(has(v.log_line, "from_note"));
}

TEST_CASE("decide: attacker-built From fields keep their outcome", "[decide][regress]") {
  StaticResolver dns = world();
  DecideOptions o;
  // OpenDMARC #342: "user@victim>" had no domain for OpenDMARC (a bypass);
  // here the victim's policy applies.
  MessageVerdict v = decide(dns, facts(" user@reject.example>"), o);
  CHECK(v.decision.action == Action::Reject);
  // OpenDMARC #72 shape: the display name's "domain" is no author, the
  // address's is.
  v = decide(dns, facts(R"( "evil\"@evil.example" <a@reject.example>)"), o);
  REQUIRE(v.verdicts.size() == 1);
  CHECK(v.verdicts[0].author_domain == "reject.example");
  CHECK(v.decision.action == Action::Reject);
  // A broken field naming two domains: both are checked, the strictest wins.
  v = decide(dns, facts(" \"a@reject.example\" mallory@nodmarc.example"), o);
  CHECK(v.verdicts.size() == 2);
  CHECK(v.decision.action == Action::Reject);
  o.enforcement.reject_multi_value_from = true;
  v = decide(dns, facts(" \"a@reject.example\" mallory@nodmarc.example"), o);
  CHECK(v.decision.action == Action::Reject);
  CHECK(v.decision.reason == "multi_from");
  o.enforcement.reject_multi_value_from = false;
  // CVE-2019-16378: several addresses, each evaluated.
  v = decide(dns, facts(" a@nodmarc.example, b@reject.example"), o);
  CHECK(v.verdicts.size() == 2);
  CHECK(v.decision.action == Action::Reject);
  // CVE-2021-34555: empty list elements; no crash, no domain skipped.
  v = decide(dns, facts(" a@nodmarc.example,,b@reject.example"), o);
  CHECK(v.decision.action == Action::Reject);
  // Several From fields: every domain of every field.
  MessageFacts f = facts(" a@nodmarc.example");
  f.from_fields.push_back(" Broken, <b@reject.example");
  f.header_counts[0] = 2;
  v = decide(dns, f, o);
  CHECK(v.decision.action == Action::Reject);
}

TEST_CASE("decide: no domain at all, and a From that names no author", "[decide]") {
  StaticResolver dns = world();
  DecideOptions o;
  MessageVerdict v = decide(dns, facts(" John Doe"), o);
  CHECK(v.decision.action == Action::Reject);
  CHECK(v.decision.reason == "bad_from");
  CHECK(v.verdicts.empty());
  REQUIRE(v.ar_value);
  CHECK(has(*v.ar_value, "dmarc=permerror"));
  v = decide(dns, facts(" a@[192.0.2.1]"), o);
  CHECK(v.decision.reason == "bad_from");
  o.enforcement.bad_from = FallbackAction::Accept;
  CHECK(decide(dns, facts(" John Doe"), o).decision.action == Action::Accept);
  o.enforcement.bad_from = FallbackAction::Reject;
  MessageFacts none = facts("");
  none.from_fields.clear();
  none.header_counts[0] = 0;
  CHECK(decide(dns, none, o).decision.reason == "no_from");
  // An empty group (RFC 6854): no author domain, nothing to protect.
  v = decide(dns, facts(" undisclosed-recipients:;"), o);
  CHECK(v.decision.action == Action::Accept);
  CHECK(v.decision.reason == "no_author_domain");
  CHECK(v.authors.no_author);
  REQUIRE(v.ar_value);
  CHECK(has(*v.ar_value, "dmarc=none (no author domain)"));
  CHECK(has(v.log_line, "dmarc=none"));
  // ... unless another field names one.
  MessageFacts f = facts(" undisclosed-recipients:;");
  f.from_fields.push_back(" a@reject.example");
  CHECK(decide(dns, f, o).decision.action == Action::Reject);
}

TEST_CASE("decide: applied and requested dispositions, override reasons", "[decide]") {
  StaticResolver dns = world();
  DecideOptions o;
  MessageVerdict v = decide(dns, facts(" a@reject.example"), o);
  REQUIRE(v.verdicts.size() == 1);
  CHECK(v.verdicts[0].requested_disposition == Disposition::Reject);
  CHECK(v.verdicts[0].disposition == Disposition::Reject);
  CHECK(v.decision.action == Action::Reject);

  // RejectFailures no: a local_policy override, nothing enforced.
  o.enforcement.reject_failures = false;
  v = decide(dns, facts(" a@reject.example"), o);
  CHECK(v.decision.action == Action::Accept);
  CHECK(v.decision.reason == "report_only");
  CHECK(v.verdicts[0].requested_disposition == Disposition::Reject);
  CHECK(v.verdicts[0].disposition == Disposition::None);
  REQUIRE(v.verdicts[0].overrides.size() == 1);
  CHECK(v.verdicts[0].overrides[0] == OverrideReason::LocalPolicy);
  CHECK(v.verdicts[0].overrides[0].comment == "RejectFailures no");
  REQUIRE(v.ar_value);
  CHECK(has(*v.ar_value, "dis=none override=local_policy"));
  o.enforcement.reject_failures = true;

  // A trusted forwarder: trusted_forwarder with the entry as comment.
  ForwarderList fw;
  REQUIRE_FALSE(fw.add("203.0.113.0/24"));
  o.forwarders = &fw;
  v = decide(dns, facts(" a@reject.example"), o);
  CHECK(v.decision.action == Action::Accept);
  CHECK(v.decision.reason == "trusted_forwarder");
  REQUIRE(v.verdicts[0].overrides.size() == 1);
  CHECK(v.verdicts[0].overrides[0] == OverrideReason::TrustedForwarder);
  CHECK(v.verdicts[0].overrides[0].comment == "203.0.113.0/24");
  CHECK(has(v.log_line, "forwarder=203.0.113.0/24"));
  o.forwarders = nullptr;

  // t=y: policy.dmarc is the policy after t= (IANA), not the tag's value.
  v = decide(dns, facts(" a@test.example"), o);
  CHECK(v.decision.action == Action::Quarantine);
  REQUIRE(v.ar_value);
  CHECK(has(*v.ar_value, "policy.dmarc=quarantine"));
  CHECK(has(v.log_line, "policy=reject disposition=quarantine action=quarantine"));
  v = decide(dns, facts(" a@test.example", AuthResult::Pass, "test.example"), o);
  CHECK(has(*v.ar_value, "dmarc=pass"));
  CHECK(has(*v.ar_value, "policy.dmarc=quarantine"));
}

TEST_CASE("decide: exemptions, quarantine header, dkim= results capped", "[decide]") {
  StaticResolver dns = world();
  IpNetList ignore;
  ignore.add(*parse_ip_net("203.0.113.0/24"));
  DecideOptions o;
  o.ignore_hosts = &ignore;
  MessageVerdict v = decide(dns, facts(" a@reject.example"), o);
  CHECK_FALSE(v.checked);
  CHECK(v.skip_reason == "ignored_host");
  CHECK(v.decision.action == Action::Accept);
  CHECK(has(v.log_line, "skipped=ignored_host"));
  o.ignore_hosts = nullptr;
  MessageFacts f = facts(" a@reject.example");
  f.authenticated = true;
  CHECK(decide(dns, f, o).skip_reason == "authenticated");
  o.ignore_authenticated = false;
  CHECK(decide(dns, f, o).checked);
  f.client_ip.clear();
  CHECK(decide(dns, f, o).skip_reason == "local_client");

  v = decide(dns, facts(" a@quarantine.example"), o);
  CHECK(v.decision.action == Action::Quarantine);
  REQUIRE(v.quarantine_header);
  CHECK(v.quarantine_header->second == "yes (DMARC policy of quarantine.example)");

  // Thousands of signatures: only max_dkim_reported are written.
  f = facts(" a@reject.example");
  for (int i = 0; i < 50; ++i) {
    DkimFacts d;
    d.result = AuthResult::Fail;
    d.domain = "s" + std::to_string(i) + ".example";
    d.selector = "x";
    f.dkim.push_back(d);
  }
  f.dkim_omitted = 950;
  o.max_dkim_reported = 10;
  v = decide(dns, f, o);
  REQUIRE(v.ar_value);
  std::size_t n = 0;
  for (std::size_t p = v.ar_value->find("dkim="); p != std::string::npos; p = v.ar_value->find("dkim=", p + 1)) ++n;
  CHECK(n == 10);
  CHECK(has(*v.ar_value, "990 more signatures not listed"));
  CHECK(has(v.log_line, "dkim_more=990"));
  CHECK_FALSE(has(v.log_line, "s10.example"));
}

TEST_CASE("decide: a temporary DNS failure is never a rejection", "[decide]") {
  StaticResolver dns = world();
  dns.fail("_dmarc.broken.example");
  DecideOptions o;
  MessageVerdict v = decide(dns, facts(" a@broken.example"), o);
  CHECK(v.decision.action == Action::Accept);
  CHECK(v.decision.reason == "dns_temperror");
  o.enforcement.dns_failure = FallbackAction::TempFail;
  v = decide(dns, facts(" a@broken.example"), o);
  CHECK(v.decision.action == Action::TempFail);
  // The DKIM key lookup of an aligned signature timed out: temperror, not 550.
  MessageFacts f = facts(" a@reject.example");
  DkimFacts d;
  d.result = AuthResult::TempError;
  d.domain = "reject.example";
  d.selector = "s1";
  f.dkim.push_back(d);
  v = decide(dns, f, o);
  REQUIRE(v.verdicts.size() == 1);
  CHECK(v.verdicts[0].result == DmarcResult::TempError);
  CHECK(v.decision.action == Action::TempFail);
  CHECK(v.decision.rcode == "451");
}
