// NAME
//   redact - RFC 6590 redaction of recipients' local parts in failure reports
// SYNOPSIS
//   std::string t = dmarc::redact_address("bob@example.net", key);  // "r-3f2a...@example.net"
//   dmarc::redact_failure_job(job, key);
// DESCRIPTION
//   A failure report shows the receiving site's users to the sending
//   domain. With FailureReportRedactKey set, the local part of every
//   recipient address is replaced by "r-" and the first 16 hex digits of
//   HMAC-SHA256(KEY, lower-cased address) (GLib's GHmac): the same address
//   always gives the same token, so the domain owner can still count
//   recipients, and nobody without the key can tell who they are (RFC 6590
//   4). Redacted: Original-Rcpt-To, and the addresses in the To, Cc, Bcc,
//   Delivered-To, X-Original-To and Envelope-To fields of the original
//   header section. The sender's addresses are the domain owner's and are
//   kept.
#pragma once

#include <string>
#include <string_view>

#include "dmarc/core/failure_report.hpp"

namespace dmarc {

std::string redact_address(std::string_view address, std::string_view key);
// redact_addresses - every address in TEXT (a header field value) redacted.
std::string redact_addresses(std::string_view text, std::string_view key);
void redact_failure_job(FailureJob& job, std::string_view key);

}  // namespace dmarc
