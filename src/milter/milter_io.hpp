// milter_io.hpp - a read buffer under libmilter's MTA connections
//
// libmilter reads each protocol command with two read() calls (the 5-octet
// length and command, then the data), each after a poll(), and with its
// worker pool polls once more before every command to see whether the
// session may stay on its thread. An MTA that sends a whole message in one
// write (no replies are awaited before end of message, SMFIP_NR_*) thus
// costs about 100 system calls per message: a quarter of dmarc-milter's
// CPU in bench/ (bench/README.md).
//
// milter_io.cpp defines __wrap_accept, __wrap_read, __wrap_poll and
// __wrap_close. The build links libmilter.a into one object with
// "ld -r --wrap=accept --wrap=read --wrap=poll --wrap=close --wrap=sigwait"
// (CMakeLists.txt, libmilter_wrapped.o), which renames libmilter's own
// references to these functions, and nobody else's: SQLite, libcurl,
// libpq and our own code keep libc's. (An earlier design defined read()
// and the others in the executable for the dynamic linker to bind every
// library's calls to; bench/README.md compares the two.) Once enable()
// was called, each connection that accept() returns gets a buffer: read()
// on it fills the buffer with one system call as large as what the kernel
// holds (up to 16 KiB) and serves libmilter's small reads from it; poll()
// reports such a descriptor readable at once while its buffer holds data;
// close() drops the buffer. Every other descriptor, and everything before
// enable(), goes straight to libc.
// reached() tells whether libmilter's accept() came through here; the
// milter logs an error at its first connection if not (a libmilter built
// another way would silently lose the buffer), and a test checks the
// binary's symbols (tests/tools/check_symbol_scope.sh).
//
// The environment variable DMARC_MILTER_NO_READ_BUFFER=1 turns it off
// (dmarc-milter(8)).
#pragma once

namespace dmarc::milter::io {

// enable - buffer the connections accepted from now on (unless turned off by
// the environment); true when buffering is on.
bool enable();
bool enabled() noexcept;
// reached - libmilter's accept() has come through __wrap_accept.
bool reached() noexcept;

}  // namespace dmarc::milter::io
