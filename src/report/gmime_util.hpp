// gmime_util.hpp - what the GMime users of src/report share (internal)
#pragma once

#include <gmime/gmime.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace dmarc::gmime {

struct GObjectUnref {
  void operator()(void* p) const noexcept {
    if (p) g_object_unref(p);
  }
};
template <class T>
using GPtr = std::unique_ptr<T, GObjectUnref>;

struct GFree {
  void operator()(void* p) const noexcept { g_free(p); }
};
using GText = std::unique_ptr<char, GFree>;

inline void init() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

// one_line - a header value cannot hold a line break (RFC 5322 2.2): CR,
// LF and other controls become spaces before GMime folds and encodes it.
inline std::string one_line(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
  return out;
}

// plain_address - local@domain without anything a header could misread.
inline bool plain_address(std::string_view a) {
  if (a.empty() || a.size() > 320 || a.find('@') == std::string_view::npos) return false;
  for (unsigned char c : a) {
    if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',' || c == '"' || c == '(' || c == ')') return false;
  }
  return true;
}

// bytes - the bytes of a memory stream.
inline std::string bytes(GMimeStream* mem) {
  GByteArray* b = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
  return std::string(reinterpret_cast<const char*>(b->data), b->len);
}

// write_unix - OBJECT serialised with LF line ends.
inline std::string write_unix(GMimeObject* object, gssize* n) {
  GMimeFormatOptions* fo = g_mime_format_options_new();
  g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_UNIX);
  GPtr<GMimeStream> out(g_mime_stream_mem_new());
  *n = g_mime_object_write_to_stream(object, fo, out.get());
  g_mime_format_options_free(fo);
  return bytes(out.get());
}

// decoded - the decoded content of a leaf part.
inline std::string decoded(GMimePart* part) {
  GMimeDataWrapper* w = g_mime_part_get_content(part);
  if (!w) return {};
  GPtr<GMimeStream> mem(g_mime_stream_mem_new());
  g_mime_data_wrapper_write_to_stream(w, mem.get());
  return bytes(mem.get());
}

// mime_type - "type/subtype" of OBJECT, lower case.
inline std::string mime_type(GMimeObject* object) {
  GMimeContentType* ct = g_mime_object_get_content_type(object);
  if (!ct) return {};
  GText t(g_mime_content_type_get_mime_type(ct));
  std::string s = t ? t.get() : "";
  for (auto& ch : s) ch = static_cast<char>(g_ascii_tolower(ch));
  return s;
}

// parse_message - TEXT as a message, or null.
inline GPtr<GMimeMessage> parse_message(std::string_view text) {
  GPtr<GMimeStream> in(g_mime_stream_mem_new_with_buffer(text.data(), text.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(in.get()));
  return GPtr<GMimeMessage>(g_mime_parser_construct_message(parser.get(), nullptr));
}

// new_message - a message with the header fields every report mail has:
// From (with NAME), To, Subject, Date, Message-ID; or why not (WHAT names
// the kind of mail in the error).
struct Envelope {
  std::string_view from, from_name;
  const std::vector<std::string>* to;
  std::string_view subject, message_id;
  std::int64_t date;
};
inline GPtr<GMimeMessage> new_message(const Envelope& e, std::string_view what, std::string* error) {
  auto fail = [&](const std::string& why) {
    *error = std::string(what) + ": " + why;
    return GPtr<GMimeMessage>();
  };
  if (!plain_address(e.from)) return fail("bad From address '" + one_line(e.from) + "'");
  if (e.to->empty()) return fail("no recipient");
  for (const auto& t : *e.to) {
    if (!plain_address(t)) return fail("bad To address '" + one_line(t) + "'");
  }
  GDateTime* dt = g_date_time_new_from_unix_utc(e.date);
  if (!dt) return fail("date out of range");
  GPtr<GMimeMessage> msg(g_mime_message_new(TRUE));
  std::string name = one_line(e.from_name);
  std::string from(e.from);
  g_mime_message_add_mailbox(msg.get(), GMIME_ADDRESS_TYPE_FROM, name.empty() ? nullptr : name.c_str(), from.c_str());
  for (const auto& t : *e.to) g_mime_message_add_mailbox(msg.get(), GMIME_ADDRESS_TYPE_TO, nullptr, t.c_str());
  g_mime_message_set_subject(msg.get(), one_line(e.subject).c_str(), "utf-8");
  g_mime_message_set_date(msg.get(), dt);
  g_date_time_unref(dt);
  std::string mid = one_line(e.message_id);
  if (!mid.empty()) g_mime_message_set_message_id(msg.get(), mid.c_str());
  return msg;
}

// address_list - the addresses of L as one line ("" for none).
inline std::string address_list(InternetAddressList* l) {
  if (!l) return std::string();
  GText s(internet_address_list_to_string(l, nullptr, FALSE));
  return s ? std::string(s.get()) : std::string();
}

}  // namespace dmarc::gmime
