// failure_report.cpp - when a failure report is due, and its fields (dmarc/core/failure_report.hpp)
#include "dmarc/core/failure_report.hpp"

#include "dmarc/core/domain.hpp"

namespace dmarc {

// RFC 7489 6.3 fo=, per option; psd=y records never get failure reports
// (RFC 9989: a public suffix domain's policy is not theirs to report on).
bool failure_report_due(const Verdict& v, const MessageFacts& facts) noexcept {
  if (!v.record || v.record->psd == PsdFlag::Yes) return false;
  if (v.result == DmarcResult::None) return false;
  const FailureOptions& fo = v.record->fo;
  const bool dkim_aligned = v.dkim_alignment == Alignment::Pass;
  const bool spf_aligned = v.spf_alignment == Alignment::Pass;
  if (fo.all_fail && !dkim_aligned && !spf_aligned) return true;
  if (fo.any_fail && (!dkim_aligned || !spf_aligned)) return true;
  if (fo.dkim) {
    for (const auto& d : facts.dkim) {
      if (d.result == AuthResult::Fail || d.result == AuthResult::PermError) return true;
    }
  }
  if (fo.spf && facts.spf && (facts.spf->result == AuthResult::Fail || facts.spf->result == AuthResult::SoftFail))
    return true;
  return false;
}

std::string identity_alignment(const Verdict& v) {
  const bool dkim = v.dkim_alignment == Alignment::Pass;
  const bool spf = v.spf_alignment == Alignment::Pass;
  if (dkim && spf) return "dkim, spf";
  if (dkim) return "dkim";
  if (spf) return "spf";
  return "none";
}

std::string_view delivery_result(Action a, bool held) noexcept {
  switch (a) {
    case Action::Accept: return "delivered";
    case Action::Quarantine: return held ? "policy" : "spam";
    case Action::Reject: return "reject";
    case Action::TempFail: return "other";
  }
  return "other";
}

FeedbackReport feedback_for(const MessageFacts& facts, const Verdict& v, const MessageDecision& d,
                            std::string_view ar, std::string_view user_agent, std::string_view arrival) {
  FeedbackReport f;
  f.feedback_type = "auth-failure";
  f.version = "1";
  f.user_agent = std::string(user_agent);
  f.auth_failure = "dmarc";
  f.identity_alignment = identity_alignment(v);
  if (!ar.empty()) f.authentication_results.emplace_back(ar);
  f.original_envelope_id = facts.queue_id;
  f.original_mail_from = facts.mail_from.empty() ? "<>" : "<" + facts.mail_from + ">";
  for (const auto& r : facts.rcpt_to) f.original_rcpt_to.push_back("<" + r + ">");
  f.arrival_date = std::string(arrival);
  f.source_ip = facts.client_ip;
  f.reported_domain.push_back(v.author_domain);
  f.delivery_result = std::string(delivery_result(d.action, d.hold));
  // The DKIM fields of RFC 6591 3.2 for the signature of the author's
  // domain that failed (or the first that failed when none was the author's).
  const DkimFacts* failed = nullptr;
  for (const auto& k : facts.dkim) {
    if (k.result != AuthResult::Fail && k.result != AuthResult::PermError) continue;
    if (!failed || (ascii_iequals(k.domain, v.author_domain) && !ascii_iequals(failed->domain, v.author_domain)))
      failed = &k;
  }
  if (failed) {
    f.dkim_domain = failed->domain;
    f.dkim_identity = "@" + failed->domain;
    f.dkim_selector = failed->selector;
  }
  // SPF-DNS (RFC 6591 3.2) needs the record text itself, which SpfFacts
  // does not carry: it is left out rather than written half.
  return f;
}

}  // namespace dmarc
