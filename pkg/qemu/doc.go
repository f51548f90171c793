// Package qemu holds the table of qemu linux-user targets that binfmt_misc
// can hand foreign ELF programs to, and generates the binfmt.d files for
// them the way Fedora's qemu-user-static packages do:
// /usr/lib/binfmt.d/qemu-<cpu>-static.conf, naming the entry qemu-<cpu>,
// with the interpreter /usr/bin/qemu-<cpu>-static and flag F.
//
// The table follows qemu's scripts/qemu-binfmt-conf.sh for its target
// list and the family of each cpu. The magic and mask of every target
// that Debian 12's qemu-user-static ships a binfmt.d file for are
// Debian's, byte for byte; the other targets keep the script's. Targets
// in the host's own family are left out, as that script does, because the
// host runs them natively.
package qemu
