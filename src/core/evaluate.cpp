// evaluate.cpp - DMARC policy discovery, alignment and decision
#include "dmarc/core/evaluate.hpp"

#include "dmarc/core/domain.hpp"

namespace dmarc {

std::string_view to_token(AuthResult r) noexcept {
  switch (r) {
    case AuthResult::Pass: return "pass";
    case AuthResult::Fail: return "fail";
    case AuthResult::SoftFail: return "softfail";
    case AuthResult::Neutral: return "neutral";
    case AuthResult::None: return "none";
    case AuthResult::TempError: return "temperror";
    case AuthResult::PermError: return "permerror";
    case AuthResult::Policy: return "policy";
  }
  return "none";
}

std::optional<AuthResult> parse_auth_result(std::string_view s) noexcept {
  for (AuthResult r : {AuthResult::Pass, AuthResult::Fail, AuthResult::SoftFail, AuthResult::Neutral,
                       AuthResult::None, AuthResult::TempError, AuthResult::PermError, AuthResult::Policy}) {
    if (to_token(r) == s) return r;
  }
  return std::nullopt;
}

std::string_view to_token(DmarcResult r) noexcept {
  switch (r) {
    case DmarcResult::Pass: return "pass";
    case DmarcResult::Fail: return "fail";
    case DmarcResult::None: return "none";
    case DmarcResult::TempError: return "temperror";
    case DmarcResult::PermError: return "permerror";
  }
  return "none";
}

std::string_view to_token(Alignment a) noexcept {
  switch (a) {
    case Alignment::Pass: return "pass";
    case Alignment::Fail: return "fail";
    case Alignment::None: return "none";
    case Alignment::TempError: return "temperror";
  }
  return "none";
}

std::string_view to_token(PolicySource s) noexcept {
  switch (s) {
    case PolicySource::None: return "none";
    case PolicySource::Domain: return "p";
    case PolicySource::Subdomain: return "sp";
    case PolicySource::NonExistent: return "np";
  }
  return "none";
}

std::string_view to_token(Disposition d) noexcept {
  switch (d) {
    case Disposition::None: return "none";
    case Disposition::Quarantine: return "quarantine";
    case Disposition::Reject: return "reject";
  }
  return "none";
}

std::string_view to_token(OverrideReason r) noexcept {
  switch (r) {
    case OverrideReason::Forwarded: return "forwarded";
    case OverrideReason::SampledOut: return "sampled_out";
    case OverrideReason::TrustedForwarder: return "trusted_forwarder";
    case OverrideReason::MailingList: return "mailing_list";
    case OverrideReason::LocalPolicy: return "local_policy";
    case OverrideReason::PolicyTestMode: return "policy_test_mode";
    case OverrideReason::Other: return "other";
  }
  return "other";
}

Disposition lower_disposition(Disposition d) noexcept {
  switch (d) {
    case Disposition::Reject: return Disposition::Quarantine;
    case Disposition::Quarantine:
    case Disposition::None: return Disposition::None;
  }
  return Disposition::None;
}

Disposition to_disposition(Policy p) noexcept {
  switch (p) {
    case Policy::Reject: return Disposition::Reject;
    case Policy::Quarantine: return Disposition::Quarantine;
    case Policy::None: return Disposition::None;
  }
  return Disposition::None;
}

void apply_override(Verdict& v, OverrideReason reason) {
  v.disposition = Disposition::None;
  v.overrides.push_back(reason);
}

namespace {

struct Discovery {
  enum class Status { Found, NotFound, TempError, PermError } status = Status::NotFound;
  std::vector<LookupStep> steps;
  std::size_t found_index = 0;
  std::string why;
};

// RFC 9989 4.10.1: query the tree-walk names in order; the first valid
// record is the policy record. A temporary failure before a record is found
// stops discovery (temperror): the failing name might hold the policy.
Discovery discover_tree_walk(Resolver& resolver, std::string_view author) {
  Discovery d;
  bool saw_invalid = false;
  for (const auto& name : tree_walk_targets(author)) {
    d.steps.push_back(lookup_dmarc_at(resolver, name));
    const LookupStep& s = d.steps.back();
    if (s.finding == LookupFinding::TempError) {
      d.status = Discovery::Status::TempError;
      d.why = "DNS failure for _dmarc." + s.name + ": " + s.error;
      return d;
    }
    if (s.finding == LookupFinding::Valid) {
      d.status = Discovery::Status::Found;
      d.found_index = d.steps.size() - 1;
      return d;
    }
    if (s.finding == LookupFinding::Invalid) {
      saw_invalid = true;
      d.why = "invalid DMARC record at _dmarc." + s.name + ": " + s.error;
    }
  }
  d.status = saw_invalid ? Discovery::Status::PermError : Discovery::Status::NotFound;
  return d;
}

// RFC 7489 6.6.3: the author domain, then the PSL Organizational Domain.
Discovery discover_psl(Resolver& resolver, std::string_view author, const std::string& org) {
  Discovery d;
  bool saw_invalid = false;
  std::vector<std::string> names{std::string(author)};
  if (org != author) names.push_back(org);
  for (const auto& name : names) {
    d.steps.push_back(lookup_dmarc_at(resolver, name));
    const LookupStep& s = d.steps.back();
    if (s.finding == LookupFinding::TempError) {
      d.status = Discovery::Status::TempError;
      d.why = "DNS failure for _dmarc." + s.name + ": " + s.error;
      return d;
    }
    if (s.finding == LookupFinding::Valid) {
      d.status = Discovery::Status::Found;
      d.found_index = d.steps.size() - 1;
      return d;
    }
    if (s.finding == LookupFinding::Invalid) {
      saw_invalid = true;
      d.why = "invalid DMARC record at _dmarc." + s.name + ": " + s.error;
    }
  }
  d.status = saw_invalid ? Discovery::Status::PermError : Discovery::Status::NotFound;
  return d;
}

enum class AlignCheck { Aligned, NotAligned, TempError };

// RFC 9989 4.4.1 (SPF) / 4.4.2 (DKIM): strict needs an exact match; relaxed
// needs the same Organizational Domain, determined per identifier
// (RFC 9989 4.10.2). org(a) == org(b) implies b lies under org(a), which
// saves the walk for unrelated domains.
AlignCheck check_alignment(Resolver& resolver, std::string_view author, std::string_view author_org,
                           std::string_view identifier, AlignmentMode mode, const EvaluationOptions& opts) {
  auto id = normalize_domain(identifier);
  if (!id) return AlignCheck::NotAligned;
  if (*id == author) return AlignCheck::Aligned;
  if (mode == AlignmentMode::Strict) return AlignCheck::NotAligned;
  if (!is_subdomain_or_same(*id, author_org)) return AlignCheck::NotAligned;
  OrgDomainResult org = find_org_domain(resolver, *id, opts.mode, opts.psl);
  if (org.temp_error) return AlignCheck::TempError;
  return org.org_domain == author_org ? AlignCheck::Aligned : AlignCheck::NotAligned;
}

}  // namespace

Verdict evaluate_dmarc(Resolver& resolver, const MessageAuth& auth, const EvaluationOptions& opts) {
  Verdict v;
  auto author = normalize_domain(auth.author_domain);
  if (!author) {
    v.result = DmarcResult::PermError;
    v.author_domain = auth.author_domain;
    v.why = "invalid author domain";
    return v;
  }
  v.author_domain = *author;

  // --- policy discovery and the author's Organizational Domain ---
  Discovery d;
  if (opts.mode == DmarcMode::Rfc7489) {
    v.org_domain = opts.psl ? opts.psl->organizational_domain(*author) : *author;
    d = discover_psl(resolver, *author, v.org_domain);
  } else {
    d = discover_tree_walk(resolver, *author);
  }
  v.steps = d.steps;
  switch (d.status) {
    case Discovery::Status::TempError:
      v.result = DmarcResult::TempError;
      v.why = d.why;
      return v;
    case Discovery::Status::PermError:
      v.result = DmarcResult::PermError;
      v.why = d.why;
      return v;
    case Discovery::Status::NotFound:
      v.result = DmarcResult::None;
      v.why = "no DMARC record";
      return v;
    case Discovery::Status::Found:
      break;
  }
  const LookupStep& found = d.steps[d.found_index];
  v.record = found.record;
  v.record_domain = found.name;
  const DmarcRecord& rec = *v.record;

  if (opts.mode == DmarcMode::Rfc9989) {
    // RFC 9989 4.10.2: continue the walk past the policy record as needed.
    std::vector<LookupStep> steps = d.steps;
    auto targets = tree_walk_targets(*author);
    bool stop = rec.psd != PsdFlag::Unspecified;
    for (std::size_t i = steps.size(); i < targets.size() && !stop; ++i) {
      steps.push_back(lookup_dmarc_at(resolver, targets[i]));
      const LookupStep& s = steps.back();
      if (s.finding == LookupFinding::TempError) {
        v.result = DmarcResult::TempError;
        v.why = "DNS failure for _dmarc." + s.name + " (organizational domain): " + s.error;
        return v;
      }
      if (s.finding == LookupFinding::Valid && s.record && s.record->psd != PsdFlag::Unspecified) stop = true;
    }
    v.org_domain = org_domain_from_steps(*author, steps);
  }

  // --- which policy applies (p, sp or np) ---
  if (v.record_domain == *author) {
    v.policy_source = PolicySource::Domain;
    v.requested = rec.p;
  } else {
    v.policy_source = PolicySource::Subdomain;
    v.requested = rec.subdomain_policy();
  }

  // --- alignment ---
  bool any_temp = false;
  if (auth.spf && auth.spf->result == AuthResult::Pass) {
    v.spf_domain = auth.spf->domain;
    switch (check_alignment(resolver, *author, v.org_domain, auth.spf->domain, rec.aspf, opts)) {
      case AlignCheck::Aligned: v.spf_alignment = Alignment::Pass; break;
      case AlignCheck::NotAligned: v.spf_alignment = Alignment::Fail; break;
      case AlignCheck::TempError: v.spf_alignment = Alignment::TempError; any_temp = true; break;
    }
  } else if (auth.spf) {
    v.spf_domain = auth.spf->domain;
  }
  for (const auto& sig : auth.dkim) {
    if (sig.result != AuthResult::Pass) continue;
    if (v.dkim_domain.empty()) {
      v.dkim_domain = sig.domain;
      v.dkim_selector = sig.selector;
    }
    AlignCheck c = check_alignment(resolver, *author, v.org_domain, sig.domain, rec.adkim, opts);
    if (c == AlignCheck::Aligned) {
      v.dkim_alignment = Alignment::Pass;
      v.dkim_domain = sig.domain;
      v.dkim_selector = sig.selector;
      break;
    }
    if (c == AlignCheck::TempError) {
      v.dkim_alignment = Alignment::TempError;
      any_temp = true;
    } else if (v.dkim_alignment == Alignment::None) {
      v.dkim_alignment = Alignment::Fail;
    }
  }

  // RFC 9989 4.4: DMARC passes when SPF or DKIM gives an aligned pass.
  if (v.spf_alignment == Alignment::Pass || v.dkim_alignment == Alignment::Pass) {
    v.result = DmarcResult::Pass;
    v.disposition = Disposition::None;
    v.why = v.dkim_alignment == Alignment::Pass ? "aligned DKIM pass" : "aligned SPF pass";
    return v;
  }
  if (any_temp) {
    v.result = DmarcResult::TempError;
    v.why = "DNS failure while finding an identifier's organizational domain";
    return v;
  }
  v.result = DmarcResult::Fail;
  v.why = "no aligned SPF or DKIM pass";

  // RFC 9989 4.7 np: a non-existent subdomain (NXDOMAIN) gets np, which
  // defaults to sp. Asked only when it matters: a failing message whose
  // policy came from a parent. RFC 7489 has no np.
  if (opts.mode == DmarcMode::Rfc9989 && v.policy_source == PolicySource::Subdomain) {
    DnsAnswer a = resolver.a(*author);
    if (a.status == DnsStatus::NxDomain) {
      v.author_domain_exists = false;
      v.policy_source = PolicySource::NonExistent;
      v.requested = rec.nonexistent_policy();
    }
  }

  v.disposition = to_disposition(v.requested);
  // RFC 9989 4.7 t=y: apply the next lower policy.
  if (rec.t && v.disposition != Disposition::None) {
    v.disposition = lower_disposition(v.disposition);
    v.overrides.push_back(OverrideReason::PolicyTestMode);
  }
  // RFC 7489 6.6.4: pct sampling; messages outside the sample get the next
  // lower policy. RFC 9989 removed pct, so only in RFC 7489 mode.
  if (opts.mode == DmarcMode::Rfc7489 && rec.pct < 100 && v.disposition != Disposition::None) {
    int roll = opts.random_percent ? opts.random_percent() : 0;
    if (roll >= rec.pct) {
      v.sampled = false;
      v.disposition = lower_disposition(v.disposition);
      v.overrides.push_back(OverrideReason::SampledOut);
    }
  }
  return v;
}

}  // namespace dmarc
