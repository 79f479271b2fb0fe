// NAME
//   dkim_handles - libopendkim's C header for C++, and RAII for its handles
// DESCRIPTION
//   <opendkim/dkim.h> declares functions with C99 _Bool, which C++ does not
//   know; on every ABI we build for, C _Bool and C++ bool are the same
//   one-octet type, so the header is included with _Bool spelled bool
//   (g++ and clang++ <stdbool.h> do that already, as an extension).
//   <stdbool.h> also defines __bool_true_false_are_defined, without which
//   <ldns/common.h> would #define bool, true and false in C++ code: include
//   this file (or <stdbool.h>) before <ldns/ldns.h>.
//   Include this file, never <dkim.h> directly.
//
//   DkimLib and DkimHandle own a DKIM_LIB (dkim_close) and a DKIM
//   (dkim_free); this is the only place those functions are named.
#pragma once

#include "dmarc/adapters/c_handle.hpp"
#include <memory>

#include <stdbool.h>
#ifndef _Bool
#define _Bool bool
#define DMARC_DKIM_UNDEF_BOOL
#endif
#include <opendkim/dkim.h>
#ifdef DMARC_DKIM_UNDEF_BOOL
#undef _Bool
#undef DMARC_DKIM_UNDEF_BOOL
#endif

namespace dmarc::dkim {

using dmarc::CHandle;

using DkimLib = CHandle<DKIM_LIB, dkim_close>;
using DkimHandle = CHandle<DKIM, dkim_free>;

}  // namespace dmarc::dkim
