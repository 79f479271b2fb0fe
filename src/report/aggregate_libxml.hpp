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

namespace dmarc::report_detail {

inline void init_libxml() {
  static const bool done = [] {
    xmlInitParser();
    return true;
  }();
  (void)done;
}

}  // namespace dmarc::report_detail
