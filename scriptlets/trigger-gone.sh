# %filetriggerpostun: once per package whose binfmt.d files were
# removed; unregister what they defined, for packages that never call the
# hooks.
# $PPID is rpm, which names the transaction. See docs/lifecycle.md, "File
# triggers". A binfmt problem never fails the transaction.
if [ -x /usr/bin/binfmtctl ]; then /usr/bin/binfmtctl trigger gone "$PPID" || :; fi
