// null_milter.cpp - a libmilter milter that does nothing: the protocol's floor
//
// USAGE
//   null-milter SOCKET        e.g. inet:8897@127.0.0.1 or unix:/path
//
// DESCRIPTION
//   Negotiates as dmarc-milter does (protocol 6, no replies before end of
//   message, header values with their leading space), reads every command,
//   and at end of message inserts one header field and accepts: the same
//   reply packets as dmarc-milter's common case. It looks at nothing, so
//   its CPU per message, measured by milter-bench like the others, is what
//   libmilter and the kernel cost for a message before any SPF, DKIM or
//   DMARC work. It uses libmilter as Debian ships it (no read buffer, no
//   TCP_NODELAY): the floor of an ordinary libmilter milter.
#include <libmilter/mfapi.h>

#include <csignal>
#include <cstdio>

namespace {

sfsistat on_negotiate(SMFICTX*, unsigned long f0, unsigned long f1, unsigned long, unsigned long, unsigned long* pf0,
                      unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
  *pf0 = f0 & SMFIF_ADDHDRS;
  *pf1 = f1 & (SMFIP_NORCPT | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_HDR_LEADSPC | SMFIP_NR_CONN | SMFIP_NR_HELO |
               SMFIP_NR_MAIL | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY);
  *pf2 = 0;
  *pf3 = 0;
  return SMFIS_CONTINUE;
}

sfsistat no_reply(SMFICTX*) { return SMFIS_NOREPLY; }
sfsistat on_connect(SMFICTX*, char*, _SOCK_ADDR*) { return SMFIS_NOREPLY; }
sfsistat on_helo(SMFICTX*, char*) { return SMFIS_NOREPLY; }
sfsistat on_envfrom(SMFICTX*, char**) { return SMFIS_NOREPLY; }
sfsistat on_header(SMFICTX*, char*, char*) { return SMFIS_NOREPLY; }
sfsistat on_body(SMFICTX*, unsigned char*, size_t) { return SMFIS_NOREPLY; }

sfsistat on_eom(SMFICTX* ctx) {
  smfi_insheader(ctx, 0, const_cast<char*>("X-Null-Milter"), const_cast<char*>("seen"));
  return SMFIS_ACCEPT;
}

sfsistat on_continue(SMFICTX*) { return SMFIS_CONTINUE; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: null-milter SOCKET\n");
    return 2;
  }
  struct smfiDesc desc = {
      const_cast<char*>("null-milter"),
      SMFI_VERSION,
      SMFIF_ADDHDRS,
      on_connect,
      on_helo,
      on_envfrom,
      nullptr,
      on_header,
      no_reply,
      on_body,
      on_eom,
      on_continue,
      on_continue,
      nullptr,
      nullptr,
      on_negotiate,
  };
  if (smfi_setconn(argv[1]) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS) {
    std::fprintf(stderr, "null-milter: cannot set up %s\n", argv[1]);
    return 1;
  }
  if (smfi_opensocket(true) != MI_SUCCESS) {
    std::fprintf(stderr, "null-milter: cannot open %s\n", argv[1]);
    return 1;
  }
  return smfi_main() == MI_SUCCESS ? 0 : 1;
}
