// NAME
//   failure_mail - the AFRF failure report mail, built and read with GMime 3
// SYNOPSIS
//   dmarc::FailureMail m;  m.feedback = dmarc::feedback_for(...);  m.original = headers;
//   auto text = dmarc::build_failure_mail(m);
//   auto back = dmarc::parse_failure_mail(text.value());   // back->feedback.auth_failure == "dmarc"
// STANDARDS
//   RFC 5965 (ARF: multipart/report; report-type=feedback-report, the
//   message/feedback-report part), RFC 6591 (auth-failure), RFC 7489 7.3,
//   RFC 6522 (multipart/report), RFC 6590 (redaction, done by the caller).
// DESCRIPTION
//   build_failure_mail() makes multipart/report; report-type=feedback-report
//   with three parts: text/plain (FailureMail::text, the explanation),
//   message/feedback-report (the fields of FeedbackReport, written as a
//   GMime header list: folded, non-ASCII encoded) and the original as
//   text/rfc822-headers, or as message/rfc822 with whole_message. Header
//   values lose CR and LF before they are written (no field injection).
//   parse_failure_mail() reads any ARF report: the three parts in any
//   order, a base64 or quoted-printable feedback part (some receivers send
//   it so), fields case-insensitive, unknown fields kept in `other`; a mail
//   without a message/feedback-report part is an error. format / parse
//   _feedback_fields() do the fields alone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/expected.hpp"
#include "dmarc/core/failure_report.hpp"

namespace dmarc {

struct FailureMail {
  std::string from;
  std::string from_name;
  std::vector<std::string> to;
  std::string subject;
  std::string message_id;  // without angle brackets
  std::int64_t date = 0;
  std::string text;        // part 1
  FeedbackReport feedback;
  std::string original;    // the original header section, or the whole message
  bool whole_message = false;
};

Expected<std::string, std::string> build_failure_mail(const FailureMail& mail);

std::string format_feedback_fields(const FeedbackReport& f);
Expected<FeedbackReport, std::string> parse_feedback_fields(std::string_view text);

struct ParsedFailureReport {
  std::string from, to, subject, message_id;
  std::string text;           // the first text/plain part
  FeedbackReport feedback;
  std::string original_type;  // "text/rfc822-headers", "message/rfc822", "" when none
  std::string original;
};
Expected<ParsedFailureReport, std::string> parse_failure_mail(std::string_view text);

}  // namespace dmarc
