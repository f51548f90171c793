// Package lifecycle keeps a package's binfmt_misc entries in step with the
// package through rpm transactions.
//
// The scriptlets of a package call the hooks (Post, Preun, Postun) with
// the package's exact NEVRA and rpm's $1. A hook reads the package's own
// file manifest from the rpm database, keeps its binfmt.d files, resolves
// each through systemd's lookup (overrides and masks), and converges the
// kernel on that set:
//
//   - entries the package defines are registered, or registered again so
//     that an F entry pins the interpreter now on disk;
//   - entries it no longer defines are unregistered;
//   - an entry is removed or replaced only while the live entry still
//     matches what the package registered (a "claim" in the Store);
//     anything else is left alone and named in a notice.
//
// The Store lives under /var/lib/binfmtctl, one plain-text record per
// package, each claim in it the entry file the kernel shows. That format
// is simple enough for a shell script to act on, which matters for the
// erase %postun: rpm runs it after the package's own files, the helper
// included, are gone.
package lifecycle
