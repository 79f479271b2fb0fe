// NAME
//   aggregate_libxml - libxml2 set up once for the report code
// SYNOPSIS
//   dmarc::report_detail::init_libxml();  // before any libxml2 call
// DESCRIPTION
//   libxml2 2.9 wants xmlInitParser() called once before threads use it
//   (it sets up the encoding handlers the writer looks up, the dictionary
//   mutexes, the error state). A function-local static makes the first
//   call, from any thread, do it exactly once (C++ [stmt.dcl]/4).
#pragma once

#include <libxml/parser.h>
#include <libxml/xmlwriter.h>

#include <string_view>

#include "dmarc/adapters/c_handle.hpp"
#include "dmarc/report/aggregate_xml.hpp"

namespace dmarc::report_detail {

inline void init_libxml() {
  static const bool done = [] {
    xmlInitParser();
    return true;
  }();
  (void)done;
}

using XmlBuffer = CHandle<xmlBuffer, xmlBufferFree>;
using XmlWriter = CHandle<xmlTextWriter, xmlFreeTextWriter>;

inline const xmlChar* xc(const char* s) { return reinterpret_cast<const xmlChar*>(s); }

// Writer - xmlTextWriter calls that remember the first failure, so the
// document code reads as the element tree it writes.
class Writer {
 public:
  explicit Writer(xmlTextWriterPtr w) : w_(w) {}
  bool ok() const { return ok_; }
  void check(int rc) {
    if (rc < 0) ok_ = false;
  }
  void start(const char* name) {
    if (ok_) check(xmlTextWriterStartElement(w_, xc(name)));
  }
  void start_ns(const char* name, const char* ns) {
    if (ok_) check(xmlTextWriterStartElementNS(w_, nullptr, xc(name), xc(ns)));
  }
  void end() {
    if (ok_) check(xmlTextWriterEndElement(w_));
  }
  // attribute - NAME="VALUE" on the open element, VALUE made safe.
  void attribute(const char* name, std::string_view value) {
    if (ok_) check(xmlTextWriterWriteAttribute(w_, xc(name), xc(xml_safe_text(value).c_str())));
  }
  void text(std::string_view t) {
    if (ok_) check(xmlTextWriterWriteString(w_, xc(xml_safe_text(t).c_str())));
  }
  // element - <NAME>TEXT</NAME>, TEXT made safe for XML 1.0 first.
  void element(const char* name, std::string_view text) {
    start(name);
    if (ok_) check(xmlTextWriterWriteString(w_, xc(xml_safe_text(text).c_str())));
    end();
  }

 private:
  xmlTextWriterPtr w_;
  bool ok_ = true;
};

}  // namespace dmarc::report_detail
