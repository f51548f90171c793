// Package binfmt reads and writes the Linux kernel's binfmt_misc table and
// the binfmt.d configuration that systemd-binfmt applies at boot.
//
// It covers four things, each taking a root or a mount point so that tests
// and chroots can point it anywhere:
//
//   - parsing binfmt.d lines with systemd's rules and validating them with
//     the kernel's (Parse, ParseLine, Entry.RegisterString);
//   - looking configuration files up the way systemd-binfmt does, with
//     /etc and /run overrides and /dev/null masks (Config);
//   - reading the live table under a binfmt_misc mount (FS, Live);
//   - changing it one entry at a time, never flushing the whole table
//     (FS.Register, FS.Unregister, FS.Replace, FS.Enable, FS.Disable).
package binfmt
