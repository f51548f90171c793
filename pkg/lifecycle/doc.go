// Package lifecycle keeps binfmt_misc entries in step with the packages
// whose binfmt.d files define them, through rpm transactions.
//
// The scriptlets of a package call the hooks (Post, Preun, Postun) with
// the package's exact NEVRA and rpm's $1. Every run, be it a hook, sync,
// prune or a file trigger, goes the same way:
//
//  1. Manager.Apply reads a Snapshot under the lock: the live table,
//     every binfmt.d file systemd's lookup considers (ReadConfFiles, the
//     shadowed ones included), every package's record (its Claims), and
//     from rpm the owners of the files that matter (NeedOwners, one
//     rpm -qf).
//  2. Plan, a pure function, turns the Snapshot and the transaction's
//     Change (the package, its files once the transaction is over, the
//     files it removes, whether to repin and adopt) into a Result: one
//     Step per entry (Register, Replace, Unregister or Leave, with a
//     reason), and every record as it stands afterwards.
//  3. Apply writes the intent into the records, applies the steps to the
//     kernel, and writes the records again with what is now true, so a
//     crash at any point leaves records that claim all that may be live.
//
// The rule Plan applies is the invariant's: an entry belongs to the files
// that define it, not to one package's record. Once the transaction is
// over, an entry that a binfmt.d file on disk still defines (another
// package's, a renamed successor's, the administrator's /etc file) is
// live as the files define it, applied in systemd's order (file names
// sorted across directories, the last definition winning); an erase
// takes away only what no remaining file defines. An entry is replaced or
// removed only while it is live as some record claims it (or, with
// Change.Adopt, exactly as a file the transaction concerns defines it);
// anything else is someone else's and is named in a notice. Claims follow
// the entry: when one package's run replaces or removes an entry other
// packages claim, their records change with it, under the same lock.
//
// Callers outside the hooks (file triggers, prune) build a Change and call
// Manager.Apply, or call ReadConfFiles and Plan themselves to report what
// a run would do.
//
// The Store lives under /var/lib/binfmtctl, one plain-text record per
// package, each claim in it the entry file the kernel shows. That format
// is simple enough for a shell script to act on, which matters for the
// erase %postun: rpm runs it after the package's own files, the helper
// included, are gone. The lock is /run/binfmtctl.lock, a file only root
// can open, and every wait for it is bounded.
package lifecycle
