// redact.cpp - RFC 6590 redaction (dmarc/report/redact.hpp)
#include "dmarc/report/redact.hpp"

#include <glib.h>

#include <memory>

#include "dmarc/core/domain.hpp"

namespace dmarc {

namespace {

bool local_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-/=?^_`{|}~.").find(static_cast<char>(c)) != std::string_view::npos;
}

std::string token(std::string_view address, std::string_view key) {
  std::string lower = ascii_lowercase(address);
  std::unique_ptr<gchar, decltype(&g_free)> hex(
      g_compute_hmac_for_data(G_CHECKSUM_SHA256, reinterpret_cast<const guchar*>(key.data()), key.size(),
                              reinterpret_cast<const guchar*>(lower.data()), lower.size()),
      g_free);
  return "r-" + std::string(hex.get()).substr(0, 16);
}

}  // namespace

std::string redact_address(std::string_view address, std::string_view key) {
  std::size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0) return std::string(address);
  return token(address, key) + std::string(address.substr(at));
}

std::string redact_addresses(std::string_view text, std::string_view key) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t at = text.find('@', i);
    if (at == std::string_view::npos) break;
    std::size_t start = at;
    while (start > i && local_char(static_cast<unsigned char>(text[start - 1]))) --start;
    std::size_t end = at + 1;
    while (end < text.size() && (local_char(static_cast<unsigned char>(text[end])) || text[end] == '[' ||
                                 text[end] == ']' || text[end] == ':'))
      ++end;
    out.append(text.substr(i, start - i));
    if (start < at && end > at + 1) {
      out += redact_address(text.substr(start, end - start), key);
    } else {
      out.append(text.substr(start, end - start));
    }
    i = end;
  }
  out.append(text.substr(std::min(i, text.size())));
  return out;
}

void redact_failure_job(FailureJob& job, std::string_view key) {
  for (auto& r : job.feedback.original_rcpt_to) r = redact_addresses(r, key);
  // The header section: recipient fields, folded lines included.
  static constexpr std::string_view kFields[] = {"to", "cc", "bcc", "delivered-to", "x-original-to", "envelope-to"};
  std::string out;
  bool in_recipient_field = false;
  std::size_t pos = 0;
  const std::string& h = job.original;
  while (pos < h.size()) {
    std::size_t eol = h.find('\n', pos);
    std::size_t next = eol == std::string::npos ? h.size() : eol + 1;
    std::string_view line(h.data() + pos, next - pos);
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      // a continuation: same field as before
    } else {
      std::size_t colon = line.find(':');
      in_recipient_field = false;
      if (colon != std::string_view::npos) {
        for (auto f : kFields) in_recipient_field = in_recipient_field || ascii_iequals(line.substr(0, colon), f);
      }
    }
    if (in_recipient_field) {
      std::size_t colon = (line[0] == ' ' || line[0] == '\t') ? 0 : line.find(':') + 1;
      out.append(line.substr(0, colon));
      out += redact_addresses(line.substr(colon), key);
    } else {
      out.append(line);
    }
    pos = next;
  }
  job.original = out;
}

}  // namespace dmarc
