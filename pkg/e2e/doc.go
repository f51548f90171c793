// Package e2e holds the end-to-end suite: the real qemu-user-static-go
// package, built by the project's own build command from Debian's qemu
// interpreters, installed, upgraded, reinstalled, downgraded and removed
// with real dnf and rpm in a disposable root, with real foreign programs
// running through the real kernel's binfmt_misc; and the same product
// among the neighbours of a real Fedora host (systemd's binfmt trigger,
// Fedora's own qemu package, a package that never calls the hooks, the
// administrator's and docker's entries), with rpm's order of scriptlets
// and file triggers verified by test packages. See docs/testing.md and
// docs/lifecycle.md.
//
// It has no code of its own, only tests.
package e2e
