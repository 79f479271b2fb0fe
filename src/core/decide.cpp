// decide.cpp - the per-message decision (see include/dmarc/core/decide.hpp)
#include "dmarc/core/decide.hpp"

#include <algorithm>

#include "dmarc/core/auth_results.hpp"
#include "dmarc/core/domain.hpp"
#include "dmarc/core/from_header.hpp"

namespace dmarc {

std::string sanitize_log(std::string_view text, std::size_t max) {
  std::string out;
  for (unsigned char c : text) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    out += (c > 0x20 && c < 0x7f && c != '=') ? static_cast<char>(c) : '?';
  }
  return out.empty() ? "-" : out;
}

std::string domain_of(std::string_view addr) {
  std::size_t at = addr.rfind('@');
  return std::string(at == std::string_view::npos ? addr : addr.substr(at + 1));
}

std::optional<std::string> exemption(std::string_view client_ip, bool authenticated, const DecideOptions& o) {
  if (client_ip.empty()) return std::string("local_client");
  if (o.ignore_hosts && o.ignore_hosts->contains(client_ip)) return std::string("ignored_host");
  if (authenticated && o.ignore_authenticated) return std::string("authenticated");
  return std::nullopt;
}

AuthorReading read_authors(const std::vector<std::string>& fields, const std::array<int, kCountedHeaders.size()>& counts,
                           const EnforcementSettings& s) {
  AuthorReading r;
  auto add = [&](std::string d) {
    if (std::find(r.domains.begin(), r.domains.end(), d) == r.domains.end()) r.domains.push_back(std::move(d));
  };
  // RFC 5322 3.6: exactly one From and Date, at most one of the others.
  bool counts_ok = counts[0] == 1 && counts[1] == 1;
  for (std::size_t i = 2; i < counts.size(); ++i) counts_ok = counts_ok && counts[i] <= 1;
  if (s.required_headers && !counts_ok) {
    r.problem = FromProblem::HeaderCounts;
    return r;
  }
  if (fields.empty()) {
    r.problem = FromProblem::Missing;
    return r;
  }
  bool empty_groups_only = true;
  for (const auto& f : fields) {
    auto parsed = parse_from_header(f);
    if (parsed) {
      empty_groups_only = false;
      for (auto& d : parsed->distinct_domains()) add(std::move(d));
      continue;
    }
    if (parsed.error().code == FromErrorCode::EmptyGroup) continue;  // names no author
    empty_groups_only = false;
    // A field a sloppy mailer wrote ("Smith, John <j@example.com>"): every
    // domain a reader could take for the author's is evaluated, so one
    // broken field neither loses the mail nor hides a domain.
    if (r.malformed.empty()) r.malformed = std::string(to_token(parsed.error().code));
    for (auto& d : lenient_from_domains(f)) add(std::move(d));
  }
  if (r.domains.empty()) {
    if (empty_groups_only) r.no_author = true;
    else r.problem = FromProblem::Unparseable;
    return r;
  }
  if (r.domains.size() > 1 && s.reject_multi_value_from) r.problem = FromProblem::Several;
  else if (r.domains.size() > s.max_from_domains) r.problem = FromProblem::TooManyDomains;
  return r;
}

namespace {

// ar_fields - our Authentication-Results (RFC 8601) for the message.
AuthResultsFields ar_fields(const MessageFacts& f, const MessageVerdict& v, const DecideOptions& o) {
  AuthResultsFields ar;
  ar.authserv_id = o.authserv_id;
  if (f.spf) {
    ArSpf s;
    s.result = f.spf->result;
    s.scope = f.spf->scope;
    s.identity = f.spf->scope == SpfScope::Helo ? f.spf->domain : domain_of(f.spf->identity);
    if (s.identity.empty()) s.identity = f.spf->domain;
    s.comment = f.spf->problem;
    ar.spf = s;
  }
  const std::size_t shown = std::min(f.dkim.size(), o.max_dkim_reported);
  for (std::size_t i = 0; i < shown; ++i) {
    const DkimFacts& d = f.dkim[i];
    ArDkim a;
    a.result = d.result;
    a.domain = d.domain;
    a.selector = d.selector;
    a.b_prefix = d.b_prefix;
    std::string c;
    if (d.key_bits) c = std::to_string(d.key_bits) + "-bit key";
    if (d.body_length) c += std::string(c.empty() ? "" : "; ") + "body length limited";
    if (d.result != AuthResult::Pass && !d.reason.empty()) c += std::string(c.empty() ? "" : "; ") + d.reason;
    a.comment = std::move(c);
    ar.dkim.push_back(std::move(a));
  }
  if (std::size_t more = f.dkim.size() - shown + f.dkim_omitted; more > 0 && !ar.dkim.empty()) {
    std::string& c = ar.dkim.back().comment;
    c += std::string(c.empty() ? "" : "; ") + std::to_string(more) + " more signatures not listed";
  }

  if (v.authors.problem) {
    ArDmarc m;
    m.result = DmarcResult::PermError;
    m.comment = std::string(to_token(*v.authors.problem));
    if (!v.authors.domains.empty()) m.header_from = v.authors.domains.front();
    ar.dmarc.push_back(std::move(m));
    return ar;
  }
  if (v.authors.no_author) {
    // RFC 8601 2.7.1 dmarc=none: no aligned identifier could be extracted.
    ArDmarc m;
    m.result = DmarcResult::None;
    m.comment = "no author domain";
    ar.dmarc.push_back(std::move(m));
    return ar;
  }
  for (const auto& vd : v.verdicts) {
    ArDmarc m;
    m.result = vd.result;
    m.header_from = vd.author_domain;
    if (vd.record) {
      // policy.dmarc: the policy after sp/np, t= and pct (RFC 7489 11.2, IANA).
      m.policy = std::string(to_token(vd.policy_disposition));
      m.comment = "p=" + std::string(to_token(vd.record->p)) + " sp=" + std::string(to_token(vd.record->subdomain_policy())) +
                  " dis=" + std::string(to_token(vd.disposition));
      for (const auto& r : vd.overrides) m.comment += " override=" + std::string(to_token(r));
    }
    ar.dmarc.push_back(std::move(m));
  }
  return ar;
}

std::string log_line(const MessageFacts& f, const MessageVerdict& v, const DecideOptions& o) {
  const std::string qid = sanitize_log(f.queue_id, 32);
  if (!v.checked) {
    return "qid=" + qid + " ip=" + sanitize_log(f.client_ip, 64) + " skipped=" + v.skip_reason +
           " removed_ar=" + std::to_string(f.removed_ar);
  }
  std::string from, dmarc, policy, disposition;
  for (std::size_t i = 0; i < v.verdicts.size(); ++i) {
    const Verdict& vd = v.verdicts[i];
    const char* sep = i ? "," : "";
    from += sep + sanitize_log(vd.author_domain, 253);
    dmarc += sep + std::string(to_token(vd.result));
    policy += sep + std::string(vd.record ? to_token(vd.requested) : "-");
    disposition += sep + std::string(to_token(vd.disposition));
  }
  if (v.verdicts.empty()) {
    from = v.authors.domains.empty() ? "-" : sanitize_log(v.authors.domains.front(), 253);
    dmarc = v.authors.no_author ? "none" : "permerror";
    policy = "-";
    disposition = "-";
  }
  std::string dkim;
  const std::size_t shown = std::min(f.dkim.size(), o.max_dkim_reported);
  for (std::size_t i = 0; i < shown; ++i)
    dkim += (dkim.empty() ? "" : ",") + std::string(to_token(f.dkim[i].result)) + ":" + sanitize_log(f.dkim[i].domain, 253);
  std::string spf = "-";
  if (f.spf) {
    spf = std::string(to_token(f.spf->result)) + ":" + (f.spf->scope == SpfScope::Helo ? "helo:" : "") +
          sanitize_log(f.spf->domain, 253);
  }
  std::string line = "qid=" + qid + " ip=" + sanitize_log(f.client_ip, 64) + " from=" + from + " spf=" + spf +
                     " dkim=" + (dkim.empty() ? "none" : dkim) + " dmarc=" + dmarc + " policy=" + policy +
                     " disposition=" + disposition + " action=" + std::string(to_token(v.decision.action)) +
                     " reason=" + (v.decision.reason.empty() ? "-" : v.decision.reason);
  if (std::size_t more = f.dkim.size() - shown + f.dkim_omitted; more > 0) line += " dkim_more=" + std::to_string(more);
  if (!v.authors.malformed.empty()) line += " from_note=malformed:" + v.authors.malformed;
  if (v.forwarder) line += " forwarder=" + sanitize_log(v.forwarder->entry, 253);
  if (f.removed_ar > 0) line += " removed_ar=" + std::to_string(f.removed_ar);
  return line;
}

}  // namespace

MessageVerdict decide(Resolver& resolver, const MessageFacts& f, const DecideOptions& o) {
  MessageVerdict v;
  if (auto why = exemption(f.client_ip, f.authenticated, o)) {
    v.checked = false;
    v.skip_reason = std::move(*why);
    v.log_line = log_line(f, v, o);
    return v;
  }

  // The author domains (RFC 9989 4.4: RFC5322.From), or why there are none.
  v.authors = read_authors(f.from_fields, f.header_counts, o.enforcement);
  if (v.authors.problem) {
    v.decision = decide_bad_from(*v.authors.problem, o.enforcement);
  } else if (v.authors.no_author) {
    v.decision.reason = "no_author_domain";
  } else {
    MessageAuth auth;
    if (f.spf) auth.spf = f.spf->input();
    std::vector<DkimInput> dkim;
    dkim.reserve(f.dkim.size());
    for (const auto& d : f.dkim) dkim.push_back(d.input());
    auth.dkim = dkim;
    bool forwarder_checked = false;
    for (const auto& d : v.authors.domains) {
      auth.author_domain = d;
      Verdict vd = evaluate_dmarc(resolver, auth, o.evaluation);
      // Known forwarders (RFC 9989 5.3 leaves the final decision to the
      // receiver; RFC 9990 names the override trusted_forwarder).
      if (vd.disposition != Disposition::None && o.forwarders && !o.forwarders->empty()) {
        if (!forwarder_checked) {
          v.forwarder = o.forwarders->match(resolver, f.client_ip, dkim);
          forwarder_checked = true;
        }
        if (v.forwarder) apply_override(vd, OverrideReason::TrustedForwarder, v.forwarder->entry);
      }
      v.verdicts.push_back(std::move(vd));
    }
    v.decision = decide_message(v.verdicts, o.enforcement);
    if (v.decision.reason == "report_only") {
      // RejectFailures no: the policy asked for more than is applied; the
      // receiver's local policy (RFC 9990 local_policy) is why.
      for (auto& vd : v.verdicts)
        if (vd.disposition != Disposition::None) apply_override(vd, OverrideReason::LocalPolicy, "RejectFailures no");
    }
    if (v.forwarder && v.decision.reason.empty()) v.decision.reason = "trusted_forwarder";
  }

  v.ar_value = format_auth_results(ar_fields(f, v, o));
  if (v.decision.mark_header) {
    std::string dom = v.decision.decisive >= 0 ? v.verdicts[static_cast<std::size_t>(v.decision.decisive)].author_domain : "";
    v.quarantine_header = std::make_pair(o.quarantine_header, "yes (DMARC policy of " + sanitize_log(dom, 253) + ")");
  }
  v.log_line = log_line(f, v, o);
  return v;
}

}  // namespace dmarc
