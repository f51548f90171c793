# %filetriggerun: once per package whose binfmt.d files the transaction
# removes, with those files on standard input while they still exist, just
# before the package's %preun: unregister what they define, for packages
# that never call the hooks.
# $PPID is rpm, which names the transaction. See docs/lifecycle.md, "File
# triggers". A binfmt problem never fails the transaction.
if [ -x /usr/bin/binfmtctl ]; then /usr/bin/binfmtctl trigger removing "$PPID" || :; fi
