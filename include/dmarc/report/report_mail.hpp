// NAME
//   report_mail - the report mail, built and read with GMime 3
// SYNOPSIS
//   dmarc::ReportMail m;  m.from = ...; m.to = {...}; m.subject = ...;
//   m.attachment_name = "receiver!example.com!1700000000!1700086399.xml.gz";
//   m.attachment = gz_bytes;
//   auto text = dmarc::build_report_mail(m);        // RFC 5322, LF line ends
//   auto back = dmarc::parse_report_mail(text.value());
// STANDARDS
//   RFC 7489 7.2.1.1 (Subject, the attachment, its name), RFC 5322, RFC
//   2045-2049 (MIME), RFC 6713 (application/gzip).
// DESCRIPTION
//   build_report_mail() makes multipart/mixed with a short text/plain part
//   and the attachment (base64, Content-Disposition: attachment with its
//   file name), with From, To, Subject, Date, Message-ID and
//   MIME-Version. Header values that are not printable ASCII are encoded
//   by GMime (RFC 2047); no header or MIME structure is written by hand.
//   parse_report_mail() is its reader (tests, the e2e check): headers and
//   every leaf part with its type, file name and decoded bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/expected.hpp"

namespace dmarc {

struct ReportMail {
  std::string from;                 // ReportSender (an address)
  std::string from_name;            // display name, "" = none
  std::vector<std::string> to;      // the rua addresses
  std::string subject;
  std::string message_id;           // without angle brackets
  std::int64_t date = 0;            // epoch seconds
  std::string text;                 // the text/plain part
  std::string attachment_name;
  std::string attachment_type = "application/gzip";
  std::string attachment;           // bytes
};

Expected<std::string, std::string> build_report_mail(const ReportMail& mail);

struct MailPart {
  std::string content_type;  // "type/subtype", lower case
  std::string file_name;     // "" when none
  std::string data;          // decoded
};

struct ParsedMail {
  std::string from, to, subject, message_id, date;  // header values, decoded
  std::vector<MailPart> parts;                       // the leaf parts, in order
};

Expected<ParsedMail, std::string> parse_report_mail(std::string_view text);

}  // namespace dmarc
