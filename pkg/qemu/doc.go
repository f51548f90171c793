// Package qemu holds the table of qemu linux-user targets that binfmt_misc
// can hand foreign ELF programs to, and generates the binfmt.d files for
// them the way Fedora's qemu-user-static packages do:
// /usr/lib/binfmt.d/qemu-<cpu>-static.conf, naming the entry qemu-<cpu>,
// with the interpreter /usr/bin/qemu-<cpu>-static and flag F.
//
// The table follows qemu's scripts/qemu-binfmt-conf.sh for its target
// list and the family of each cpu, and current qemu (11.1) for the magic
// and mask: every target qemu 11.1 ships a binfmt.d file for has that
// file's magic and mask, byte for byte (testdata/qemu-11.1); i486, which
// has none, keeps the script's. cris, which qemu has dropped, is not in
// the table, so the package never registers it. Targets
// in the host's own family are left out, as that script does, because the
// host runs them natively.
package qemu
