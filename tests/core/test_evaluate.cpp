// test_evaluate.cpp - discovery, organizational domain, alignment, policy
#include <catch2/catch.hpp>

#include <libpsl.h>

#include "dmarc/adapters/psl_file.hpp"
#include "dmarc/core/evaluate.hpp"
#include "support/static_resolver.hpp"

using namespace dmarc;
using dmarc::test::StaticResolver;

namespace {
MessageAuth msg(std::string from, std::optional<SpfInput> spf = {}, std::vector<DkimInput> dkim = {}) {
  MessageAuth m;
  m.author_domain = std::move(from);
  m.spf = std::move(spf);
  m.dkim = std::move(dkim);
  return m;
}
SpfInput spf_pass(std::string d) { return {AuthResult::Pass, std::move(d), SpfScope::MailFrom}; }
DkimInput dkim_pass(std::string d) { return {AuthResult::Pass, std::move(d), "s1"}; }

const PublicSuffixList& psl() {
  static PublicSuffixList list = [] {
    auto l = load_public_suffix_list(DMARC_CONFORMANCE_DIR "/psl/public_suffix_list.dat");
    REQUIRE(l);
    return std::move(l.value());
  }();
  return list;
}
}  // namespace

TEST_CASE("walk: targets jump to 7 labels and never exceed 8 (RFC 9989 4.10)", "[walk]") {
  auto t = tree_walk_targets("a.b.c.d.e.f.g.h.i.j.example.com");
  REQUIRE(t.size() == 8);
  CHECK(t[0] == "a.b.c.d.e.f.g.h.i.j.example.com");
  CHECK(t[1] == "f.g.h.i.j.example.com");
  CHECK(t[7] == "com");
  t = tree_walk_targets("mail.example.com");
  REQUIRE(t.size() == 3);
  CHECK(t[2] == "com");
  t = tree_walk_targets("a.b.c.d.e.f.g.h");  // 8 labels
  REQUIRE(t.size() == 8);
  CHECK(t[1] == "b.c.d.e.f.g.h");
  for (std::size_t n = 1; n < 40; ++n) {
    std::string d = "com";
    for (std::size_t i = 1; i < n; ++i) d = "x" + std::to_string(i) + "." + d;
    CHECK(tree_walk_targets(d).size() <= kMaxTreeWalkQueries);
  }
}

TEST_CASE("walk: several DMARC records at one name count as none (RFC 7489 6.6.3)", "[walk]") {
  StaticResolver dns;
  dns.add_txt("_dmarc.example.com", "v=DMARC1; p=reject");
  dns.add_txt("_dmarc.example.com", "v=DMARC1; p=none");
  dns.add_txt("_dmarc.example.net", "v=DMARC1; p=reject");
  dns.add_txt("_dmarc.example.net", "some-other=verification");
  CHECK(lookup_dmarc_at(dns, "example.com").finding == LookupFinding::Multiple);
  CHECK(lookup_dmarc_at(dns, "example.net").finding == LookupFinding::Valid);
  auto v = evaluate_dmarc(dns, msg("example.com"), {});
  CHECK(v.result == DmarcResult::None);
}

TEST_CASE("policy: own record gives p, existing subdomain sp, NXDOMAIN subdomain np", "[policy]") {
  StaticResolver dns;
  dns.add_txt("_dmarc.example.org", "v=DMARC1; p=reject; sp=quarantine; np=none");
  dns.add("sub.example.org", RRType::A, "192.0.2.1");
  auto v = evaluate_dmarc(dns, msg("example.org"), {});
  CHECK(v.result == DmarcResult::Fail);
  CHECK(v.policy_source == PolicySource::Domain);
  CHECK(v.disposition == Disposition::Reject);
  v = evaluate_dmarc(dns, msg("sub.example.org"), {});
  CHECK(v.policy_source == PolicySource::Subdomain);
  CHECK(v.disposition == Disposition::Quarantine);
  v = evaluate_dmarc(dns, msg("ghost.example.org"), {});
  CHECK(v.policy_source == PolicySource::NonExistent);
  CHECK_FALSE(v.author_domain_exists);
  CHECK(v.disposition == Disposition::None);
  // RFC 7489 mode has no np.
  EvaluationOptions o;
  o.mode = DmarcMode::Rfc7489;
  o.psl = &psl();
  v = evaluate_dmarc(dns, msg("ghost.example.org"), o);
  CHECK(v.policy_source == PolicySource::Subdomain);
  CHECK(v.disposition == Disposition::Quarantine);
}

TEST_CASE("policy: t=y applies the next lower policy (RFC 9989 4.7)", "[policy]") {
  StaticResolver dns;
  dns.add_txt("_dmarc.example.org", "v=DMARC1; p=reject; t=y");
  dns.add_txt("_dmarc.example.net", "v=DMARC1; p=quarantine; t=y");
  auto v = evaluate_dmarc(dns, msg("example.org"), {});
  CHECK(v.result == DmarcResult::Fail);
  CHECK(v.requested == Policy::Reject);
  CHECK(v.disposition == Disposition::Quarantine);
  REQUIRE(v.overrides.size() == 1);
  CHECK(v.overrides[0] == OverrideReason::PolicyTestMode);
  v = evaluate_dmarc(dns, msg("example.net"), {});
  CHECK(v.disposition == Disposition::None);
  // t= is an RFC 9989 tag: RFC 7489 receivers ignore it.
  EvaluationOptions o;
  o.mode = DmarcMode::Rfc7489;
  o.psl = &psl();
  v = evaluate_dmarc(dns, msg("example.org"), o);
  CHECK(v.disposition == Disposition::Reject);
  CHECK(v.overrides.empty());
  // policy.dmarc (policy_disposition) is the policy after t=, also for a pass.
  v = evaluate_dmarc(dns, msg("example.org", spf_pass("example.org")), {});
  CHECK(v.result == DmarcResult::Pass);
  CHECK(v.policy_disposition == Disposition::Quarantine);
  CHECK(v.requested_disposition == Disposition::None);
  CHECK(v.disposition == Disposition::None);
}

TEST_CASE("policy: pct sampling only in RFC 7489 mode, with an injected random source", "[policy]") {
  StaticResolver dns;
  dns.add_txt("_dmarc.example.org", "v=DMARC1; p=reject; pct=30");
  EvaluationOptions o;
  o.mode = DmarcMode::Rfc7489;
  o.psl = &psl();
  o.random_percent = [] { return 29; };
  auto v = evaluate_dmarc(dns, msg("example.org"), o);
  CHECK(v.disposition == Disposition::Reject);
  CHECK(v.sampled);
  o.random_percent = [] { return 30; };
  v = evaluate_dmarc(dns, msg("example.org"), o);
  CHECK(v.disposition == Disposition::Quarantine);
  CHECK_FALSE(v.sampled);
  REQUIRE(v.overrides.size() == 1);
  CHECK(v.overrides[0] == OverrideReason::SampledOut);
  // RFC 9989 mode ignores pct.
  EvaluationOptions bis;
  bis.random_percent = [] { return 99; };
  v = evaluate_dmarc(dns, msg("example.org"), bis);
  CHECK(v.disposition == Disposition::Reject);
  // pct=0 in RFC 7489 mode: never the full policy.
  StaticResolver dns0;
  dns0.add_txt("_dmarc.example.org", "v=DMARC1; p=reject; pct=0");
  o.random_percent = [] { return 0; };
  v = evaluate_dmarc(dns0, msg("example.org"), o);
  CHECK(v.disposition == Disposition::Quarantine);
}

TEST_CASE("alignment: strict and relaxed, SPF and DKIM (RFC 9989 4.4)", "[align]") {
  StaticResolver dns;
  dns.add_txt("_dmarc.example.org", "v=DMARC1; p=reject");
  dns.add_txt("_dmarc.strict.example", "v=DMARC1; p=reject; adkim=s; aspf=s");
  auto v = evaluate_dmarc(dns, msg("example.org", spf_pass("bounce.example.org")), {});
  CHECK(v.result == DmarcResult::Pass);
  CHECK(v.spf_alignment == Alignment::Pass);
  v = evaluate_dmarc(dns, msg("example.org", spf_pass("example.net"), {dkim_pass("mail.example.org")}), {});
  CHECK(v.result == DmarcResult::Pass);
  CHECK(v.spf_alignment == Alignment::Fail);
  CHECK(v.dkim_alignment == Alignment::Pass);
  CHECK(v.dkim_domain == "mail.example.org");
  v = evaluate_dmarc(dns, msg("strict.example", spf_pass("a.strict.example"), {dkim_pass("a.strict.example")}), {});
  CHECK(v.result == DmarcResult::Fail);
  CHECK(v.spf_alignment == Alignment::Fail);
  CHECK(v.dkim_alignment == Alignment::Fail);
  v = evaluate_dmarc(dns, msg("strict.example", spf_pass("STRICT.example.")), {});
  CHECK(v.result == DmarcResult::Pass);
  // A failing mechanism never aligns.
  v = evaluate_dmarc(dns, msg("example.org", SpfInput{AuthResult::SoftFail, "example.org", SpfScope::MailFrom},
                              {DkimInput{AuthResult::Fail, "example.org", "s"}}),
                     {});
  CHECK(v.result == DmarcResult::Fail);
  CHECK(v.spf_alignment == Alignment::None);
  CHECK(v.dkim_alignment == Alignment::None);
  // The lookalike domain is not aligned.
  v = evaluate_dmarc(dns, msg("example.org", spf_pass("evilexample.org")), {});
  CHECK(v.spf_alignment == Alignment::Fail);
}

TEST_CASE("alignment: org domain per identifier with psd=y (RFC 9989 4.10.2)", "[align]") {
  StaticResolver dns;
  dns.add_txt("_dmarc.bank.example", "v=DMARC1; p=reject; psd=y");
  auto v = evaluate_dmarc(dns, msg("giant.bank.example", spf_pass("mega.bank.example")), {});
  CHECK(v.org_domain == "giant.bank.example");
  CHECK(v.spf_alignment == Alignment::Fail);
  v = evaluate_dmarc(dns, msg("giant.bank.example", spf_pass("mail.giant.bank.example")), {});
  CHECK(v.spf_alignment == Alignment::Pass);
}

TEST_CASE("errors: temperror and permerror", "[errors]") {
  StaticResolver dns;
  dns.fail("_dmarc.example.org");
  auto v = evaluate_dmarc(dns, msg("example.org", spf_pass("example.org")), {});
  CHECK(v.result == DmarcResult::TempError);
  CHECK(v.disposition == Disposition::None);

  // A failure above the policy record only matters when relaxed alignment
  // needs the author's organizational domain: not for an exact match, not
  // without identifiers, not for an identifier under another TLD.
  StaticResolver dns2;
  dns2.add_txt("_dmarc.mail.example.org", "v=DMARC1; p=reject");
  dns2.fail("_dmarc.example.org");
  v = evaluate_dmarc(dns2, msg("mail.example.org"), {});
  CHECK(v.result == DmarcResult::Fail);
  CHECK(v.disposition == Disposition::Reject);
  v = evaluate_dmarc(dns2, msg("mail.example.org", spf_pass("mail.example.org")), {});
  CHECK(v.result == DmarcResult::Pass);
  v = evaluate_dmarc(dns2, msg("mail.example.org", spf_pass("example.net"), {dkim_pass("mail.example.org")}), {});
  CHECK(v.result == DmarcResult::Pass);
  v = evaluate_dmarc(dns2, msg("mail.example.org", spf_pass("mail.example.com")), {});
  CHECK(v.result == DmarcResult::Fail);
  // ... but a relaxed candidate under the same TLD cannot be decided.
  v = evaluate_dmarc(dns2, msg("mail.example.org", spf_pass("bounce.example.org")), {});
  CHECK(v.result == DmarcResult::TempError);
  CHECK(v.spf_alignment == Alignment::TempError);
  CHECK(v.disposition == Disposition::None);
  // An exact DKIM pass beside it still passes.
  v = evaluate_dmarc(dns2, msg("mail.example.org", spf_pass("bounce.example.org"), {dkim_pass("mail.example.org")}), {});
  CHECK(v.result == DmarcResult::Pass);

  StaticResolver dns3;
  dns3.add_txt("_dmarc.example.org", "v=DMARC1; p=bogus");
  v = evaluate_dmarc(dns3, msg("example.org"), {});
  CHECK(v.result == DmarcResult::PermError);
  // A valid record higher up wins over an invalid one below.
  dns3.add_txt("_dmarc.org", "v=DMARC1; p=quarantine; psd=y");
  v = evaluate_dmarc(dns3, msg("example.org"), {});
  CHECK(v.result == DmarcResult::Fail);
  CHECK(v.record_domain == "org");

  StaticResolver dns4;
  v = evaluate_dmarc(dns4, msg("not a domain"), {});
  CHECK(v.result == DmarcResult::PermError);
  v = evaluate_dmarc(dns4, msg("nothing.example"), {});
  CHECK(v.result == DmarcResult::None);
}

TEST_CASE("walk: query cap is honoured on deep names", "[walk]") {
  StaticResolver dns;
  dns.add_txt("_dmarc.example.com", "v=DMARC1; p=reject; np=none");
  auto v = evaluate_dmarc(dns, msg("a.b.c.d.e.f.g.h.i.j.mail.example.com"), {});
  std::size_t txt = 0;
  for (auto& q : dns.queries())
    if (q.second == RRType::TXT) ++txt;
  CHECK(txt <= kMaxTreeWalkQueries);
  CHECK(v.record_domain == "example.com");
  CHECK(v.policy_source == PolicySource::NonExistent);
}

TEST_CASE("override: a local override records its RFC 9990 reason", "[policy]") {
  StaticResolver dns;
  dns.add_txt("_dmarc.example.org", "v=DMARC1; p=reject");
  auto v = evaluate_dmarc(dns, msg("example.org"), {});
  apply_override(v, OverrideReason::TrustedForwarder);
  CHECK(v.disposition == Disposition::None);
  CHECK(to_token(v.overrides.back()) == "trusted_forwarder");
}

TEST_CASE("errors: a temporary SPF or DKIM failure for an identifier that would align is temperror", "[errors]") {
  // RFC 9989: a DNS error is neither pass nor fail; RFC 8601 temperror.
  StaticResolver dns;
  dns.add_txt("_dmarc.example.org", "v=DMARC1; p=reject");
  dns.add_txt("_dmarc.strict.example", "v=DMARC1; p=reject; adkim=s; aspf=s");
  const SpfInput spf_temp{AuthResult::TempError, "example.org", SpfScope::MailFrom};
  const SpfInput spf_temp_sub{AuthResult::TempError, "bounce.example.org", SpfScope::MailFrom};
  const SpfInput spf_temp_other{AuthResult::TempError, "example.net", SpfScope::MailFrom};
  const DkimInput dkim_temp{AuthResult::TempError, "example.org", "s1"};
  const DkimInput dkim_temp_sub{AuthResult::TempError, "mail.example.org", "s1"};
  const DkimInput dkim_temp_other{AuthResult::TempError, "esp.example", "s1"};
  const DkimInput dkim_fail{AuthResult::Fail, "example.org", "s1"};

  // SPF: exact and relaxed aligned MAIL FROM domain.
  auto v = evaluate_dmarc(dns, msg("example.org", spf_temp), {});
  CHECK(v.result == DmarcResult::TempError);
  CHECK(v.spf_alignment == Alignment::TempError);
  CHECK(v.disposition == Disposition::None);
  v = evaluate_dmarc(dns, msg("example.org", spf_temp_sub), {});
  CHECK(v.result == DmarcResult::TempError);
  // DKIM: the key lookup of an aligned d= timed out.
  v = evaluate_dmarc(dns, msg("example.org", {}, {dkim_temp}), {});
  CHECK(v.result == DmarcResult::TempError);
  CHECK(v.dkim_alignment == Alignment::TempError);
  v = evaluate_dmarc(dns, msg("example.org", {}, {dkim_fail, dkim_temp_sub}), {});
  CHECK(v.result == DmarcResult::TempError);
  // Temperrors for identifiers that could never align change nothing.
  v = evaluate_dmarc(dns, msg("example.org", spf_temp_other, {dkim_temp_other}), {});
  CHECK(v.result == DmarcResult::Fail);
  CHECK(v.disposition == Disposition::Reject);
  // Strict alignment: only the exact domain could align.
  v = evaluate_dmarc(dns, msg("strict.example", SpfInput{AuthResult::TempError, "a.strict.example", SpfScope::MailFrom},
                              {DkimInput{AuthResult::TempError, "a.strict.example", "s"}}),
                     {});
  CHECK(v.result == DmarcResult::Fail);
  v = evaluate_dmarc(dns, msg("strict.example", {}, {DkimInput{AuthResult::TempError, "strict.example", "s"}}), {});
  CHECK(v.result == DmarcResult::TempError);
  // Another aligned pass decides: pass.
  v = evaluate_dmarc(dns, msg("example.org", spf_temp, {dkim_pass("example.org")}), {});
  CHECK(v.result == DmarcResult::Pass);
  v = evaluate_dmarc(dns, msg("example.org", spf_pass("example.org"), {dkim_temp}), {});
  CHECK(v.result == DmarcResult::Pass);
  // RFC 7489 mode too (PSL organizational domain).
  EvaluationOptions o;
  o.mode = DmarcMode::Rfc7489;
  o.psl = &psl();
  v = evaluate_dmarc(dns, msg("example.org", spf_temp_sub), o);
  CHECK(v.result == DmarcResult::TempError);
  v = evaluate_dmarc(dns, msg("example.org", spf_temp_other, {dkim_temp_other}), o);
  CHECK(v.result == DmarcResult::Fail);
}

TEST_CASE("walk: no organizational-domain walk for exact matches or unrelated identifiers", "[walk]") {
  StaticResolver dns;
  dns.add_txt("_dmarc.mail.example.org", "v=DMARC1; p=reject");
  auto txt_queries = [&] {
    std::size_t n = 0;
    for (auto& q : dns.queries())
      if (q.second == RRType::TXT) ++n;
    return n;
  };
  auto v = evaluate_dmarc(dns, msg("mail.example.org", spf_pass("mail.example.org"), {dkim_pass("mail.example.org")}), {});
  CHECK(v.result == DmarcResult::Pass);
  CHECK(txt_queries() == 1);  // _dmarc.mail.example.org only
  CHECK(v.org_domain.empty());
  dns.clear_log();
  v = evaluate_dmarc(dns, msg("mail.example.org", spf_pass("esp.example.net")), {});
  CHECK(v.result == DmarcResult::Fail);
  CHECK(txt_queries() == 1);
  dns.clear_log();
  v = evaluate_dmarc(dns, msg("mail.example.org", spf_pass("bounce.example.org")), {});
  CHECK(txt_queries() > 1);
  CHECK(v.org_domain == "mail.example.org");
}
