// Package rpmfile writes an RPM package described by an nfpm.Info, the
// same package nfpm's own rpm packager would write, but without holding it
// in memory.
//
// nfpm (through google/rpmpack) reads every file whole, keeps all of them
// until the end, and compresses the payload into a memory buffer with a
// single-threaded encoder at zstd's default 8 MiB window: about 600 MB of
// memory and an 85 MB package for the 35 qemu interpreters. Write instead
// streams one file at a time through a zstd encoder into a temporary file,
// hashing as it goes, and only then writes the lead, the signature header
// and the header in front of the payload. Its memory is the encoder's
// window, whatever the size of the package.
//
// The window is the lever for this content: the interpreters share most of
// their code (glibc, qemu's linux-user and TCG layers), so a window that
// reaches back over one or two whole interpreters (32 MiB) finds that code
// again and the payload shrinks to a third.
//
// The dependencies and file triggers are rpmbuild's for the same content
// (TestMatchesRPMBuild compares them tag by tag): each scriptlet requires
// its interpreter in its context (Requires(post): /bin/sh), the rpmlib()
// features the package uses are required, the name is also provided with
// the architecture's ISA (NAME(x86-64)), every public macro of a file in
// /usr/lib/rpm/macros.d is provided as rpm_macro(NAME), and each list is
// sorted as rpm's dependency sets are. Options add context-qualified
// requirements, generated conflicts and file triggers, which nfpm.Info
// cannot express.
//
// The other tags are rpmpack's, with these differences,
// each as rpmbuild does it: the cpio names start with "./", so that
// rpm2cpio | cpio -idm stays inside the current directory; the cpio
// entries carry the file's mtime and inode number; symbolic links have
// mode 0777 rather than 0; FILERDEVS is 0 and FILEDIGESTALGO holds one
// value; and the signature header's payload size is the size of the cpio
// archive rather than the sum of the file sizes.
package rpmfile
