// domain_check.cpp - the analysis behind dmarc-check
#include "dmarc/core/domain_check.hpp"

#include "dmarc/core/domain.hpp"

namespace dmarc {

std::string_view to_token(CheckSeverity s) noexcept {
  switch (s) {
    case CheckSeverity::Info: return "info";
    case CheckSeverity::Warning: return "warning";
    case CheckSeverity::Error: return "error";
  }
  return "info";
}

std::string_view to_token(CheckStatus s) noexcept {
  switch (s) {
    case CheckStatus::Found: return "found";
    case CheckStatus::NoRecord: return "no-record";
    case CheckStatus::Invalid: return "invalid";
    case CheckStatus::TempError: return "temperror";
  }
  return "?";
}

CheckSeverity DomainCheck::worst() const {
  CheckSeverity w = CheckSeverity::Info;
  for (const auto& f : findings) {
    if (static_cast<int>(f.severity) > static_cast<int>(w)) w = f.severity;
  }
  return w;
}

namespace {
void add(DomainCheck& c, CheckSeverity s, std::string m) { c.findings.push_back({s, std::move(m)}); }

// RFC 7489 7.1: a report destination outside the policy domain's
// organizational domain must publish "v=DMARC1" at
// <policy-domain>._report._dmarc.<destination-domain>.
void check_destinations(Resolver& resolver, DomainCheck& c, const DmarcRecord& rec, const std::string& policy_domain,
                        const std::string& policy_org, DmarcMode mode, const PublicSuffixList* psl) {
  auto one = [&](const char* tag, const std::vector<ReportUri>& uris) {
    for (const auto& u : uris) {
      if (!u.is_mailto()) {
        add(c, CheckSeverity::Warning, std::string(tag) + " URI '" + u.uri + "' is not a mailto: address; no reports can be sent there");
        continue;
      }
      std::string addr = u.mailto_address();
      auto dom = normalize_domain(addr.substr(addr.rfind('@') + 1));
      if (!dom) {
        add(c, CheckSeverity::Warning, std::string(tag) + " address '" + addr + "' has an invalid domain");
        continue;
      }
      OrgDomainResult org = find_org_domain(resolver, *dom, mode, psl);
      if (!org.temp_error && org.org_domain == policy_org) continue;  // same organization
      ExternalDestination e{tag, addr, *dom, false, false};
      DnsAnswer a = resolver.txt(policy_domain + "._report._dmarc." + *dom);
      if (dns_error_kind(a.status) == DnsErrorKind::Temporary) {
        e.temp_error = true;
        add(c, CheckSeverity::Warning, std::string(tag) + " destination " + addr + ": DNS failure checking its authorization");
      } else {
        for (const auto& t : a.records) {
          if (is_dmarc_record(t)) e.authorized = true;
        }
        if (!e.authorized) {
          add(c, CheckSeverity::Warning,
              std::string(tag) + " destination " + addr + " is outside " + policy_org + " and has not authorized reports (no v=DMARC1 at " +
                  policy_domain + "._report._dmarc." + *dom + "); receivers will not send reports there (RFC 7489 7.1)");
        }
      }
      c.external.push_back(std::move(e));
    }
  };
  one("rua", rec.rua);
  one("ruf", rec.ruf);
}
}  // namespace

DomainCheck check_domain(Resolver& resolver, const std::string& domain, DmarcMode mode, const PublicSuffixList* psl) {
  DomainCheck c;
  c.mode = mode;
  auto d = normalize_domain(domain);
  if (!d) {
    c.domain = domain;
    c.status = CheckStatus::Invalid;
    add(c, CheckSeverity::Error, "'" + domain + "' is not a valid domain name");
    return c;
  }
  c.domain = *d;

  MessageAuth failing;
  failing.author_domain = *d;
  EvaluationOptions opts;
  opts.mode = mode;
  opts.psl = psl;
  opts.random_percent = [] { return 0; };  // the policy as published
  c.failing = evaluate_dmarc(resolver, failing, opts);

  OrgDomainResult tw = find_org_domain(resolver, *d, DmarcMode::Rfc9989, nullptr);
  c.org_tree_walk = tw.temp_error ? "" : tw.org_domain;
  if (psl) c.org_psl = psl->organizational_domain(*d);

  for (const auto& s : c.failing.steps) {
    if (s.finding == LookupFinding::Multiple)
      add(c, CheckSeverity::Error, "_dmarc." + s.name + " has " + s.error + "; receivers treat that as no record (RFC 7489 6.6.3)");
    if (s.finding == LookupFinding::Invalid)
      add(c, CheckSeverity::Error, "_dmarc." + s.name + " holds an unusable DMARC record: " + s.error);
  }

  switch (c.failing.result) {
    case DmarcResult::TempError:
      c.status = CheckStatus::TempError;
      add(c, CheckSeverity::Error, c.failing.why);
      return c;
    case DmarcResult::PermError:
      c.status = CheckStatus::Invalid;
      return c;
    case DmarcResult::None:
      c.status = CheckStatus::NoRecord;
      add(c, CheckSeverity::Warning, "no DMARC record applies to " + c.domain + ": anyone can send mail as this domain");
      return c;
    default:
      break;
  }
  c.status = CheckStatus::Found;
  const DmarcRecord& rec = *c.failing.record;
  for (const auto& p : rec.problems) {
    add(c, p.severity == ProblemSeverity::Info ? CheckSeverity::Info : CheckSeverity::Warning,
        (p.tag.empty() ? std::string() : p.tag + ": ") + p.message);
  }
  Policy applied = c.failing.requested;
  if (applied == Policy::None) {
    add(c, CheckSeverity::Warning,
        "policy none: monitoring only, spoofed mail is delivered; once reports show every legitimate sender "
        "passing, move to p=quarantine, then p=reject");
  }
  if (rec.p != Policy::None && rec.sp && *rec.sp == Policy::None)
    add(c, CheckSeverity::Warning, "sp=none leaves every subdomain unprotected under p=" + std::string(to_token(rec.p)));
  if (rec.t) add(c, CheckSeverity::Info, "t=y: test mode, receivers apply one policy level lower (RFC 9989)");
  if (rec.pct_present && rec.pct < 100) {
    if (mode == DmarcMode::Rfc9989)
      add(c, CheckSeverity::Warning, "pct=" + std::to_string(rec.pct) + " is ignored by RFC 9989 receivers (use t=y for testing)");
    else
      add(c, CheckSeverity::Info, "pct=" + std::to_string(rec.pct) + ": the policy applies to that share of failing mail, the rest gets one level lower");
  }
  if (rec.rua.empty())
    add(c, CheckSeverity::Warning, "no rua: you get no aggregate reports, so you cannot see who sends as your domain");
  if (c.failing.record_domain != c.domain)
    add(c, CheckSeverity::Info, "no record at _dmarc." + c.domain + "; the policy comes from _dmarc." + c.failing.record_domain);
  if (!c.org_psl.empty() && !c.org_tree_walk.empty() && c.org_psl != c.org_tree_walk)
    add(c, CheckSeverity::Info, "the organizational domain differs between RFC 9989 (" + c.org_tree_walk + ") and RFC 7489 (" + c.org_psl + "); alignment results may differ between receivers");

  // The author's organizational domain under the mode in use (evaluate_dmarc
  // finds it only when an identifier needs it).
  std::string org = mode == DmarcMode::Rfc7489 ? c.org_psl : c.org_tree_walk;
  if (org.empty()) org = c.failing.record_domain;
  check_destinations(resolver, c, rec, c.failing.record_domain, org, mode, psl);
  return c;
}

}  // namespace dmarc
