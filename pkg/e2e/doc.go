// Package e2e holds the end-to-end suite: the real qemu-user-static-go
// package, built by the project's own build command from Debian's qemu
// interpreters, installed, upgraded, reinstalled, downgraded and removed
// with real dnf and rpm in a disposable root, with real foreign programs
// running through the real kernel's binfmt_misc. See docs/testing.md.
//
// It has no code of its own, only tests.
package e2e
