// message_policy.cpp - one action per message from its verdicts
#include "dmarc/core/message_policy.hpp"

namespace dmarc {

std::string_view to_token(QuarantineAction a) noexcept {
  switch (a) {
    case QuarantineAction::Header: return "header";
    case QuarantineAction::Hold: return "hold";
    case QuarantineAction::Both: return "both";
  }
  return "header";
}

std::string_view to_token(FallbackAction a) noexcept {
  switch (a) {
    case FallbackAction::Accept: return "accept";
    case FallbackAction::TempFail: return "tempfail";
    case FallbackAction::Reject: return "reject";
  }
  return "accept";
}

std::string_view to_token(Action a) noexcept {
  switch (a) {
    case Action::Accept: return "accept";
    case Action::Quarantine: return "quarantine";
    case Action::Reject: return "reject";
    case Action::TempFail: return "tempfail";
  }
  return "accept";
}

std::string_view to_token(FromProblem p) noexcept {
  switch (p) {
    case FromProblem::Missing: return "no_from";
    case FromProblem::Unparseable: return "bad_from";
    case FromProblem::Several: return "multi_from";
    case FromProblem::TooManyDomains: return "too_many_from_domains";
    case FromProblem::HeaderCounts: return "required_headers";
  }
  return "bad_from";
}

std::string fill_reply_text(std::string_view tmpl, std::string_view domain) {
  std::string out;
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl.compare(i, 8, "{domain}") == 0) {
      out.append(domain);
      i += 7;
    } else {
      out += tmpl[i];
    }
  }
  // SMTP reply text: printable ASCII only (RFC 5321 4.2), bounded.
  std::string clean;
  for (unsigned char c : out) {
    if (clean.size() >= 400) break;
    clean += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  return clean;
}

namespace {
int rank(Disposition d) {
  switch (d) {
    case Disposition::Reject: return 2;
    case Disposition::Quarantine: return 1;
    case Disposition::None: return 0;
  }
  return 0;
}

MessageDecision fallback(FallbackAction a, std::string reason, std::string text_temp, std::string text_perm) {
  MessageDecision d;
  d.reason = std::move(reason);
  switch (a) {
    case FallbackAction::Accept:
      break;
    case FallbackAction::TempFail:
      d.action = Action::TempFail;
      d.rcode = "451";
      d.xcode = "4.7.1";
      d.text = std::move(text_temp);
      break;
    case FallbackAction::Reject:
      d.action = Action::Reject;
      d.rcode = "550";
      d.xcode = "5.7.1";
      d.text = std::move(text_perm);
      break;
  }
  return d;
}
}  // namespace

MessageDecision decide_message(const std::vector<Verdict>& verdicts, const EnforcementSettings& s) {
  MessageDecision d;
  // RFC 7489 6.6.1 / RFC 9989 5.3: with several author domains each is
  // evaluated; the strictest resulting disposition is applied.
  int best = -1;
  int best_rank = 0;
  bool temperror = false;
  for (std::size_t i = 0; i < verdicts.size(); ++i) {
    const Verdict& v = verdicts[i];
    if (v.result == DmarcResult::TempError) temperror = true;
    int r = rank(v.disposition);
    if (r > best_rank) {
      best_rank = r;
      best = static_cast<int>(i);
    }
  }
  if (best < 0) {
    if (temperror) {
      std::string dom;
      for (const auto& v : verdicts) {
        if (v.result == DmarcResult::TempError) {
          dom = v.author_domain;
          break;
        }
      }
      return fallback(s.dns_failure, "dns_temperror",
                      fill_reply_text("Temporary DNS failure evaluating the DMARC policy of {domain}; try again later", dom),
                      fill_reply_text("DMARC policy of {domain} could not be evaluated", dom));
    }
    return d;
  }
  const Verdict& v = verdicts[static_cast<std::size_t>(best)];
  d.decisive = best;
  if (!s.reject_failures) {
    d.reason = "report_only";
    return d;
  }
  if (v.disposition == Disposition::Reject) {
    d.action = Action::Reject;
    d.rcode = "550";
    d.xcode = "5.7.1";
    d.text = fill_reply_text(s.reject_text, v.author_domain);
    d.reason = "dmarc_reject";
  } else {
    d.action = Action::Quarantine;
    d.hold = s.quarantine != QuarantineAction::Header;
    d.mark_header = s.quarantine != QuarantineAction::Hold;
    d.reason = "dmarc_quarantine";
  }
  return d;
}

MessageDecision decide_bad_from(FromProblem p, const EnforcementSettings& s) {
  std::string why;
  switch (p) {
    case FromProblem::Missing: why = "no From header field"; break;
    case FromProblem::Unparseable: why = "unreadable From header field"; break;
    case FromProblem::Several: why = "several From domains"; break;
    case FromProblem::TooManyDomains: why = "too many From domains"; break;
    case FromProblem::HeaderCounts: why = "header fields do not meet RFC 5322 3.6"; break;
  }
  // RFC 7489 6.6.1: a message whose author cannot be determined cannot be
  // evaluated; rejecting it keeps spoofs from slipping through unparsed.
  // RejectMultiValueFrom and RequiredHeaders ask for a rejection outright.
  FallbackAction a = (p == FromProblem::Several || p == FromProblem::HeaderCounts) ? FallbackAction::Reject : s.bad_from;
  return fallback(a, std::string(to_token(p)), "Message cannot be checked for DMARC: " + why,
                  "Message rejected: " + why);
}

}  // namespace dmarc
