// Package inspect reads any rpm package with go-rpmutils, without
// installing it, and reports what it is and what it would do to
// binfmt_misc: its NEVRA, whether its digests and signatures check out,
// its scriptlets and files, and the binfmt entries its binfmt.d files
// define.
//
// It also lints a package that ships binfmt.d files. A Report holds
// Problems; those of SeverityError make the package unfit to install:
//
//   - a binfmt.d file in the payload does not parse, or is a symlink that
//     leads out of the package (what it defines then depends on the system
//     it is installed on); a symlink within the package, or a hardlink, is
//     read from the file it shares data with;
//   - an entry with flag F names an interpreter that the package neither
//     ships nor requires: the kernel opens it when the entry is
//     registered, so registration fails;
//   - an entry matches programs of the host's own architecture family,
//     which would send native programs through an emulator;
//   - %post registers entries but neither %preun nor %postun ever
//     unregisters them, so they outlive the package (Red Hat bug
//     1732178: Fedora's own qemu-user-static only restarts
//     systemd-binfmt).
//
// Damaged input (truncated, corrupted, not an rpm at all) is an error
// from File, never a panic: the structure of both headers is checked
// before go-rpmutils parses them. Hostile input cannot make inspect hold
// or do more than fixed bounds allow: the payload is read as a stream by
// inspect's own cpio reader and decoders, with every declared size checked
// against the header before anything is read, dictionaries and windows of
// at most 32 MiB, and the binfmt.d data kept bounded (docs/reliability.md).
//
// The text view escapes the package's control characters, so that a
// scriptlet cannot hide a line from a terminal; the JSON report keeps
// every string exactly.
//
// Both package formats are read: v4, which rpm 4 and build write, and
// v6, rpm 6's default. For v6 the digests and the OpenPGP signatures are
// checked here (v6.go), because go-rpmutils 0.4 cannot; its stripped cpio
// payload goes through the same reader as v4's.
package inspect
