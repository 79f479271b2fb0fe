// NAME
//   message_policy - from per-author-domain verdicts to one action
// STANDARDS
//   RFC 9989 5.3 (policy enforcement is the receiver's decision), 4.7
//   (p/sp/np values), RFC 7489 6.6.1 (messages with several authors or
//   From fields), RFC 5322 3.6 (header field counts), RFC 3463 / RFC 5248
//   (enhanced status codes: 5.7.1 delivery not authorized, 4.7.1).
// DESCRIPTION
//   decide_message() combines the verdicts of every author domain of a
//   message (the strictest disposition wins) with the operator's
//   EnforcementSettings and yields one Action with its SMTP reply and a
//   reason token for the log line:
//     dmarc_reject / dmarc_quarantine   the publisher's policy applied
//     report_only                       RejectFailures no: nothing enforced
//     dns_temperror                     a DNS failure kept us from deciding
//     (empty)                           nothing to enforce
//   decide_bad_from() does the same for messages without a usable From.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/evaluate.hpp"

namespace dmarc {

enum class QuarantineAction { Header, Hold, Both };
std::string_view to_token(QuarantineAction a) noexcept;

// What to do with a message when no DMARC decision can be made.
enum class FallbackAction { Accept, TempFail, Reject };
std::string_view to_token(FallbackAction a) noexcept;

struct EnforcementSettings {
  bool reject_failures = true;                    // RejectFailures
  QuarantineAction quarantine = QuarantineAction::Header;  // QuarantineAction
  FallbackAction dns_failure = FallbackAction::Accept;     // DNSFailureAction
  FallbackAction bad_from = FallbackAction::Reject;        // BadFromAction
  bool reject_multi_value_from = false;           // RejectMultiValueFrom
  std::size_t max_from_domains = 4;               // MaxFromDomains
  bool required_headers = false;                  // RequiredHeaders
  std::string reject_text = "Message rejected by the DMARC policy of {domain}";  // RejectText
};

enum class Action { Accept, Quarantine, Reject, TempFail };
std::string_view to_token(Action a) noexcept;

struct MessageDecision {
  Action action = Action::Accept;
  std::string rcode;     // "550", "451" for Reject / TempFail
  std::string xcode;     // "5.7.1", "4.7.1"
  std::string text;      // reply text, printable ASCII
  bool hold = false;         // quarantine: put the message on hold in the MTA
  bool mark_header = false;  // quarantine: add the quarantine header
  std::string reason;        // token for the log line
  int decisive = -1;         // index of the verdict that decided, -1 for none
};

MessageDecision decide_message(const std::vector<Verdict>& verdicts, const EnforcementSettings& s);

// Why a message has no From domain to evaluate.
enum class FromProblem { Missing, Unparseable, Several, TooManyDomains, HeaderCounts };
std::string_view to_token(FromProblem p) noexcept;
MessageDecision decide_bad_from(FromProblem p, const EnforcementSettings& s);

// fill_reply_text - TEMPLATE with {domain} replaced, made printable.
std::string fill_reply_text(std::string_view tmpl, std::string_view domain);

}  // namespace dmarc
