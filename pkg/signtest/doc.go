// Package signtest checks, with real rpm and dnf in disposable roots, that
// the packages and repository the Makefile builds with SIGN_KEY are what
// fleets need: dnf installs from the repository with gpgcheck=1 and
// repo_gpgcheck=1, and rpm and dnf refuse unsigned or altered packages,
// on both test stacks (Debian 12's dnf 4 and rpm 4.18, sid's dnf5 and
// rpm 6.1). It has tests only.
package signtest
