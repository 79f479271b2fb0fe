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

std::string_view to_token(DiscoveryMethod m) noexcept { return m == DiscoveryMethod::Psl ? "psl" : "treewalk"; }

void apply_override(Verdict& v, OverrideReason reason, std::string comment) {
  v.disposition = Disposition::None;
  v.overrides.push_back(PolicyOverride{reason, std::move(comment)});
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

// AuthorOrg - the author domain's Organizational Domain, found only when an
// identifier needs it (relaxed alignment of a domain that differs from the
// author domain). RFC 9989 4.10.2: the walk goes on past the policy record
// up to a record with psd=, or the end of the tree-walk names.
class AuthorOrg {
 public:
  AuthorOrg(Resolver& r, const std::string& author, const Discovery& d, const EvaluationOptions& o)
      : resolver_(r), author_(author), discovery_(d), opts_(o) {}

  // get - the Organizational Domain, or nullptr after a DNS failure.
  const std::string* get() {
    if (!done_) compute();
    return temp_ ? nullptr : &org_;
  }
  bool known() const noexcept { return done_ && !temp_; }
  const std::string& why() const noexcept { return why_; }

 private:
  void compute() {
    done_ = true;
    if (opts_.mode == DmarcMode::Rfc7489) {
      org_ = opts_.psl ? opts_.psl->organizational_domain(author_) : author_;
      return;
    }
    std::vector<LookupStep> steps = discovery_.steps;
    const LookupStep& found = steps[discovery_.found_index];
    bool stop = found.record && found.record->psd != PsdFlag::Unspecified;
    auto targets = tree_walk_targets(author_);
    for (std::size_t i = steps.size(); i < targets.size() && !stop; ++i) {
      steps.push_back(lookup_dmarc_at(resolver_, targets[i]));
      const LookupStep& s = steps.back();
      if (s.finding == LookupFinding::TempError) {
        temp_ = true;
        why_ = "DNS failure for _dmarc." + s.name + " (organizational domain): " + s.error;
        return;
      }
      if (s.finding == LookupFinding::Valid && s.record && s.record->psd != PsdFlag::Unspecified) stop = true;
    }
    org_ = org_domain_from_steps(author_, steps);
  }

  Resolver& resolver_;
  const std::string& author_;
  const Discovery& discovery_;
  const EvaluationOptions& opts_;
  bool done_ = false, temp_ = false;
  std::string org_, why_;
};

std::string_view last_label(std::string_view d) {
  std::size_t dot = d.rfind('.');
  return dot == std::string_view::npos ? d : d.substr(dot + 1);
}

// RFC 9989 4.4.1 (SPF) / 4.4.2 (DKIM): strict needs an exact match; relaxed
// needs the same Organizational Domain, determined per identifier
// (RFC 9989 4.10.2). An exact match asks nothing more of DNS. Every
// Organizational Domain ends in its domain's last label, so domains under
// different TLDs never align and cost no walk; org(a) == org(b) implies b
// lies under org(a), which saves the identifier's walk for the rest.
AlignCheck check_alignment(Resolver& resolver, const std::string& author, AuthorOrg& author_org,
                           std::string_view identifier, AlignmentMode mode, const EvaluationOptions& opts) {
  auto id = normalize_domain(identifier);
  if (!id) return AlignCheck::NotAligned;
  if (*id == author) return AlignCheck::Aligned;
  if (mode == AlignmentMode::Strict) return AlignCheck::NotAligned;
  if (last_label(*id) != last_label(author)) return AlignCheck::NotAligned;
  const std::string* org = author_org.get();
  if (!org) return AlignCheck::TempError;
  if (!is_subdomain_or_same(*id, *org)) return AlignCheck::NotAligned;
  OrgDomainResult r = find_org_domain(resolver, *id, opts.mode, opts.psl);
  if (r.temp_error) return AlignCheck::TempError;
  return r.org_domain == *org ? AlignCheck::Aligned : AlignCheck::NotAligned;
}

Alignment to_alignment(AlignCheck c) noexcept {
  switch (c) {
    case AlignCheck::Aligned: return Alignment::Pass;
    case AlignCheck::NotAligned: return Alignment::Fail;
    case AlignCheck::TempError: return Alignment::TempError;
  }
  return Alignment::Fail;
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

  // --- policy discovery ---
  Discovery d;
  if (opts.mode == DmarcMode::Rfc7489) {
    v.discovery = DiscoveryMethod::Psl;
    d = discover_psl(resolver, *author, opts.psl ? opts.psl->organizational_domain(*author) : *author);
  } else {
    v.discovery = DiscoveryMethod::TreeWalk;
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

  // --- which policy applies (p, sp or np) ---
  if (v.record_domain == *author) {
    v.policy_source = PolicySource::Domain;
    v.requested = rec.p;
  } else {
    v.policy_source = PolicySource::Subdomain;
    v.requested = rec.subdomain_policy();
  }

  // --- alignment ---
  AuthorOrg author_org(resolver, *author, d, opts);
  if (auth.spf) {
    v.spf_domain = auth.spf->domain;
    if (auth.spf->result == AuthResult::Pass) {
      v.spf_alignment = to_alignment(check_alignment(resolver, *author, author_org, auth.spf->domain, rec.aspf, opts));
    } else if (auth.spf->result == AuthResult::TempError &&
               check_alignment(resolver, *author, author_org, auth.spf->domain, rec.aspf, opts) != AlignCheck::NotAligned) {
      // A temporary SPF failure for a MAIL FROM (or HELO) domain that would
      // have aligned: its pass might have decided the message.
      v.spf_alignment = Alignment::TempError;
    }
  }
  for (const auto& sig : auth.dkim) {
    if (sig.result != AuthResult::Pass) continue;
    if (v.dkim_domain.empty()) {
      v.dkim_domain = sig.domain;
      v.dkim_selector = sig.selector;
    }
    AlignCheck c = check_alignment(resolver, *author, author_org, sig.domain, rec.adkim, opts);
    if (c == AlignCheck::Aligned) {
      v.dkim_alignment = Alignment::Pass;
      v.dkim_domain = sig.domain;
      v.dkim_selector = sig.selector;
      break;
    }
    if (c == AlignCheck::TempError) v.dkim_alignment = Alignment::TempError;
    else if (v.dkim_alignment == Alignment::None) v.dkim_alignment = Alignment::Fail;
  }
  if (v.dkim_alignment != Alignment::Pass) {
    // A signature whose key lookup failed temporarily (RFC 6376 3.9
    // TEMPFAIL) for a d= that would have aligned might have passed.
    for (const auto& sig : auth.dkim) {
      if (sig.result != AuthResult::TempError) continue;
      if (check_alignment(resolver, *author, author_org, sig.domain, rec.adkim, opts) != AlignCheck::NotAligned) {
        v.dkim_alignment = Alignment::TempError;
        break;
      }
    }
  }
  if (author_org.known()) v.org_domain = *author_org.get();

  // RFC 9989 4.7 np: a non-existent subdomain (NXDOMAIN) gets np, which
  // defaults to sp. Asked only when it matters: a failing message whose
  // policy came from a parent. RFC 7489 has no np.
  const bool pass = v.spf_alignment == Alignment::Pass || v.dkim_alignment == Alignment::Pass;
  const bool temp = v.spf_alignment == Alignment::TempError || v.dkim_alignment == Alignment::TempError;
  if (!pass && !temp && opts.mode == DmarcMode::Rfc9989 && v.policy_source == PolicySource::Subdomain) {
    DnsAnswer a = resolver.a(*author);
    if (a.status == DnsStatus::NxDomain) {
      v.author_domain_exists = false;
      v.policy_source = PolicySource::NonExistent;
      v.requested = rec.nonexistent_policy();
    }
  }

  // --- the policy after t= and pct (RFC 8601 policy.dmarc) ---
  v.policy_disposition = to_disposition(v.requested);
  // RFC 9989 4.7 t=y: apply the next lower policy. t= is an RFC 9989 tag;
  // RFC 7489 receivers ignore it (RFC 7489 6.3: unknown tags are ignored).
  const bool testing = opts.mode == DmarcMode::Rfc9989 && rec.t && v.policy_disposition != Disposition::None;
  if (testing) v.policy_disposition = lower_disposition(v.policy_disposition);

  // RFC 9989 4.4: DMARC passes when SPF or DKIM gives an aligned pass.
  if (pass) {
    v.result = DmarcResult::Pass;
    v.why = v.dkim_alignment == Alignment::Pass ? "aligned DKIM pass" : "aligned SPF pass";
    return v;
  }
  if (temp) {
    v.result = DmarcResult::TempError;
    v.why = !author_org.why().empty() ? author_org.why()
            : v.dkim_alignment == Alignment::TempError
                ? "temporary DKIM failure for a signature that would align"
                : "temporary SPF failure for a domain that would align";
    return v;
  }
  v.result = DmarcResult::Fail;
  v.why = "no aligned SPF or DKIM pass";
  if (testing) v.overrides.push_back(PolicyOverride{OverrideReason::PolicyTestMode, "t=y"});
  // RFC 7489 6.6.4: pct sampling; messages outside the sample get the next
  // lower policy. RFC 9989 removed pct, so only in RFC 7489 mode.
  if (opts.mode == DmarcMode::Rfc7489 && rec.pct < 100 && v.policy_disposition != Disposition::None) {
    int roll = opts.random_percent ? opts.random_percent() : 0;
    if (roll >= rec.pct) {
      v.sampled = false;
      v.policy_disposition = lower_disposition(v.policy_disposition);
      v.overrides.push_back(PolicyOverride{OverrideReason::SampledOut, "pct=" + std::to_string(rec.pct)});
    }
  }
  v.requested_disposition = v.policy_disposition;
  v.disposition = v.requested_disposition;
  return v;
}

}  // namespace dmarc
