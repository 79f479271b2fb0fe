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
// milter_io.cpp defines accept(), read(), poll() and close() in the
// executable; the dynamic linker binds libmilter's calls to them (as for
// sigwait() in main.cpp). Once enable() was called, each connection that
// accept() returns gets a buffer: read() on it fills the buffer with one
// system call as large as what the kernel holds (up to 16 KiB) and serves
// libmilter's small reads from it; poll() reports such a descriptor readable
// at once while its buffer holds data; close() drops the buffer. Every other
// descriptor, and everything before enable(), goes straight to libc. Only
// libmilter calls accept() in this program.
//
// The environment variable DMARC_MILTER_NO_READ_BUFFER=1 turns it off
// (dmarc-milter(8)).
#pragma once

namespace dmarc::milter::io {

// enable - buffer the connections accepted from now on (unless turned off by
// the environment); true when buffering is on.
bool enable();

}  // namespace dmarc::milter::io
