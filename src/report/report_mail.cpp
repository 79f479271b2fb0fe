// report_mail.cpp - the report mail through GMime 3 (dmarc/report/report_mail.hpp)
//
// Every header and MIME boundary is GMime's: this file only says what goes
// in. GObjects are held by unique_ptr with g_object_unref.
#include "dmarc/report/report_mail.hpp"

#include "gmime_util.hpp"

namespace dmarc {

using gmime::GPtr;
using gmime::one_line;

Expected<std::string, std::string> build_report_mail(const ReportMail& m) {
  gmime::init();
  std::string error;
  GPtr<GMimeMessage> msg =
      gmime::new_message(gmime::Envelope{m.from, m.from_name, &m.to, m.subject, m.message_id, m.date}, "report mail", &error);
  if (!msg) return Unexpected{error};

  GPtr<GMimeMultipart> mixed(g_mime_multipart_new_with_subtype("mixed"));
  GPtr<GMimeTextPart> text(g_mime_text_part_new_with_subtype("plain"));
  g_mime_text_part_set_text(text.get(), m.text.c_str());
  g_mime_multipart_add(mixed.get(), GMIME_OBJECT(text.get()));

  std::string type = m.attachment_type.empty() ? "application/octet-stream" : m.attachment_type;
  std::string major = type.substr(0, type.find('/'));
  std::string minor = type.find('/') == std::string::npos ? "octet-stream" : type.substr(type.find('/') + 1);
  GPtr<GMimePart> att(g_mime_part_new_with_type(major.c_str(), minor.c_str()));
  g_mime_object_set_disposition(GMIME_OBJECT(att.get()), GMIME_DISPOSITION_ATTACHMENT);
  std::string fname = one_line(m.attachment_name);
  if (!fname.empty()) g_mime_part_set_filename(att.get(), fname.c_str());
  GPtr<GMimeStream> data(g_mime_stream_mem_new_with_buffer(m.attachment.data(), m.attachment.size()));
  GPtr<GMimeDataWrapper> wrapper(g_mime_data_wrapper_new_with_stream(data.get(), GMIME_CONTENT_ENCODING_DEFAULT));
  g_mime_part_set_content(att.get(), wrapper.get());
  g_mime_part_set_content_encoding(att.get(), GMIME_CONTENT_ENCODING_BASE64);
  g_mime_multipart_add(mixed.get(), GMIME_OBJECT(att.get()));
  g_mime_message_set_mime_part(msg.get(), GMIME_OBJECT(mixed.get()));

  gssize n = 0;
  std::string out = gmime::write_unix(GMIME_OBJECT(msg.get()), &n);
  if (n < 0) return Unexpected{std::string("report mail: GMime could not write the message")};
  return out;
}

namespace {

struct PartCollector {
  std::vector<MailPart>* parts;
};

void collect_part(GMimeObject* /*parent*/, GMimeObject* part, gpointer user) {
  auto* c = static_cast<PartCollector*>(user);
  if (!GMIME_IS_PART(part)) return;  // multiparts and message/rfc822 wrappers
  MailPart p;
  p.content_type = gmime::mime_type(part);
  if (const char* f = g_mime_part_get_filename(GMIME_PART(part))) p.file_name = f;
  p.data = gmime::decoded(GMIME_PART(part));
  c->parts->push_back(std::move(p));
}

}  // namespace

Expected<ParsedMail, std::string> parse_report_mail(std::string_view text) {
  gmime::init();
  GPtr<GMimeMessage> msg = gmime::parse_message(text);
  if (!msg) return Unexpected{std::string("not a mail message")};
  ParsedMail out;
  out.from = gmime::address_list(g_mime_message_get_from(msg.get()));
  out.to = gmime::address_list(g_mime_message_get_to(msg.get()));
  if (const char* s = g_mime_message_get_subject(msg.get())) out.subject = s;
  if (const char* s = g_mime_message_get_message_id(msg.get())) out.message_id = s;
  if (const char* s = g_mime_object_get_header(GMIME_OBJECT(msg.get()), "Date")) out.date = s;
  PartCollector c{&out.parts};
  g_mime_message_foreach(msg.get(), collect_part, &c);
  return out;
}

}  // namespace dmarc
