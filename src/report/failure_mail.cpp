// failure_mail.cpp - the AFRF failure report through GMime 3 (dmarc/report/failure_mail.hpp)
#include "dmarc/report/failure_mail.hpp"

#include "dmarc/core/domain.hpp"
#include "gmime_util.hpp"

namespace dmarc {

using gmime::GPtr;
using gmime::GText;
using gmime::one_line;


std::string format_feedback_fields(const FeedbackReport& f) {
  gmime::init();
  GMimeParserOptions* po = g_mime_parser_options_get_default();
  GMimeHeaderList* list = g_mime_header_list_new(po);
  for (const auto& [name, value] : feedback_field_list(f))
    g_mime_header_list_append(list, name.c_str(), one_line(value).c_str(), "utf-8");
  GMimeFormatOptions* fo = g_mime_format_options_new();
  g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_UNIX);
  GText text(g_mime_header_list_to_string(list, fo));
  g_mime_format_options_free(fo);
  g_object_unref(list);
  return text ? std::string(text.get()) : std::string();
}

Expected<FeedbackReport, std::string> parse_feedback_fields(std::string_view text) {
  gmime::init();
  // The fields are a header section: GMime reads them as one (folding,
  // RFC 2047), followed by an empty body.
  std::string section(text);
  while (!section.empty() && (section.back() == '\n' || section.back() == '\r')) section.pop_back();
  section += "\n\n";
  GPtr<GMimeMessage> msg = gmime::parse_message(section);
  if (!msg) return Unexpected{std::string("the feedback report fields cannot be read")};
  GMimeHeaderList* list = g_mime_object_get_header_list(GMIME_OBJECT(msg.get()));
  FeedbackReport f;
  f.feedback_type.clear();
  f.version.clear();
  int count = list ? g_mime_header_list_get_count(list) : 0;
  for (int i = 0; i < count; ++i) {
    GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
    const char* n = g_mime_header_get_name(h);
    const char* v = g_mime_header_get_value(h);
    std::string name = n ? n : "";
    std::string value = v ? v : "";
    // Unfolded, trimmed (a value of only blanks is empty).
    for (auto& c : value) {
      if (c == '\r' || c == '\n' || c == '\t') c = ' ';
    }
    while (!value.empty() && value.front() == ' ') value.erase(value.begin());
    while (!value.empty() && value.back() == ' ') value.pop_back();
    if (auto e = apply_feedback_field(f, name, std::move(value))) return Unexpected{*e};
  }
  if (f.feedback_type.empty()) return Unexpected{std::string("no Feedback-Type field (RFC 5965 3.1)")};
  return f;
}

Expected<std::string, std::string> build_failure_mail(const FailureMail& m) {
  gmime::init();
  std::string error;
  GPtr<GMimeMessage> msg =
      gmime::new_message(gmime::Envelope{m.from, m.from_name, &m.to, m.subject, m.message_id, m.date}, "failure report", &error);
  if (!msg) return Unexpected{error};

  // RFC 6522: multipart/report; report-type=feedback-report (RFC 5965 2).
  GPtr<GMimeMultipart> report(g_mime_multipart_new_with_subtype("report"));
  g_mime_object_set_content_type_parameter(GMIME_OBJECT(report.get()), "report-type", "feedback-report");

  GPtr<GMimeTextPart> text(g_mime_text_part_new_with_subtype("plain"));
  g_mime_text_part_set_text(text.get(), m.text.c_str());
  g_mime_multipart_add(report.get(), GMIME_OBJECT(text.get()));

  std::string fields = format_feedback_fields(m.feedback);
  GPtr<GMimePart> feedback(g_mime_part_new_with_type("message", "feedback-report"));
  GPtr<GMimeStream> fstream(g_mime_stream_mem_new_with_buffer(fields.data(), fields.size()));
  GPtr<GMimeDataWrapper> fwrap(g_mime_data_wrapper_new_with_stream(fstream.get(), GMIME_CONTENT_ENCODING_DEFAULT));
  g_mime_part_set_content(feedback.get(), fwrap.get());
  g_mime_part_set_content_encoding(feedback.get(), GMIME_CONTENT_ENCODING_7BIT);
  g_mime_multipart_add(report.get(), GMIME_OBJECT(feedback.get()));

  if (m.whole_message) {
    GPtr<GMimeMessage> original = gmime::parse_message(m.original);
    if (!original) return Unexpected{std::string("failure report: the original message cannot be read")};
    GPtr<GMimeMessagePart> part(g_mime_message_part_new_with_message("rfc822", original.get()));
    g_mime_multipart_add(report.get(), GMIME_OBJECT(part.get()));
  } else {
    GPtr<GMimePart> headers(g_mime_part_new_with_type("text", "rfc822-headers"));
    GPtr<GMimeStream> hs(g_mime_stream_mem_new_with_buffer(m.original.data(), m.original.size()));
    GPtr<GMimeDataWrapper> hw(g_mime_data_wrapper_new_with_stream(hs.get(), GMIME_CONTENT_ENCODING_DEFAULT));
    g_mime_part_set_content(headers.get(), hw.get());
    // Header text is ASCII but for hostile senders: let GMime pick 7bit or QP.
    g_mime_part_set_content_encoding(
        headers.get(), g_mime_part_get_best_content_encoding(headers.get(), GMIME_ENCODING_CONSTRAINT_7BIT));
    g_mime_multipart_add(report.get(), GMIME_OBJECT(headers.get()));
  }
  g_mime_message_set_mime_part(msg.get(), GMIME_OBJECT(report.get()));
  gssize n = 0;
  std::string out = gmime::write_unix(GMIME_OBJECT(msg.get()), &n);
  if (n < 0) return Unexpected{std::string("failure report: GMime could not write the message")};
  return out;
}

Expected<ParsedFailureReport, std::string> parse_failure_mail(std::string_view text) {
  gmime::init();
  GPtr<GMimeMessage> msg = gmime::parse_message(text);
  if (!msg) return Unexpected{std::string("not a mail message")};
  ParsedFailureReport out;
  out.from = gmime::address_list(g_mime_message_get_from(msg.get()));
  out.to = gmime::address_list(g_mime_message_get_to(msg.get()));
  if (const char* s = g_mime_message_get_subject(msg.get())) out.subject = s;
  if (const char* s = g_mime_message_get_message_id(msg.get())) out.message_id = s;
  GMimeObject* top = g_mime_message_get_mime_part(msg.get());
  if (!top || !GMIME_IS_MULTIPART(top)) return Unexpected{std::string("not a multipart/report message (RFC 5965 2)")};
  GMimeMultipart* mp = GMIME_MULTIPART(top);
  bool have_feedback = false;
  int count = g_mime_multipart_get_count(mp);
  for (int i = 0; i < count; ++i) {
    GMimeObject* part = g_mime_multipart_get_part(mp, i);
    std::string type = gmime::mime_type(part);
    if (type == "message/feedback-report") {
      std::string fields;
      if (GMIME_IS_PART(part)) {
        fields = gmime::decoded(GMIME_PART(part));
      } else if (GMIME_IS_MESSAGE_PART(part)) {
        GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(part));
        gssize n = 0;
        if (inner) fields = gmime::write_unix(GMIME_OBJECT(inner), &n);
      }
      auto f = parse_feedback_fields(fields);
      if (!f) return Unexpected{"message/feedback-report: " + f.error()};
      out.feedback = std::move(f.value());
      have_feedback = true;
    } else if (type == "text/plain" && out.text.empty() && GMIME_IS_PART(part)) {
      out.text = gmime::decoded(GMIME_PART(part));
    } else if (type == "text/rfc822-headers" && GMIME_IS_PART(part)) {
      out.original_type = type;
      out.original = gmime::decoded(GMIME_PART(part));
    } else if ((type == "message/rfc822" || type == "message/global") && GMIME_IS_MESSAGE_PART(part)) {
      out.original_type = type;
      GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(part));
      gssize n = 0;
      if (inner) out.original = gmime::write_unix(GMIME_OBJECT(inner), &n);
    }
  }
  if (!have_feedback) return Unexpected{std::string("no message/feedback-report part (not an ARF report)")};
  return out;
}

}  // namespace dmarc
