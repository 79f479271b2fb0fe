// spf2_handles.hpp - RAII owners for libspf2 objects (the only place their
// *_free functions are named).
#pragma once

#include "dmarc/adapters/c_handle.hpp"
#include <memory>

extern "C" {
#include <spf2/spf.h>
}

namespace dmarc::spf2 {

using dmarc::CHandle;

using ServerHandle = CHandle<SPF_server_t, SPF_server_free>;
using RequestHandle = CHandle<SPF_request_t, SPF_request_free>;
using ResponseHandle = CHandle<SPF_response_t, SPF_response_free>;
using RecordHandle = CHandle<SPF_record_t, SPF_record_free>;
using DnsRrHandle = CHandle<SPF_dns_rr_t, SPF_dns_rr_free>;

}  // namespace dmarc::spf2
