# %transfiletriggerin -P 1000699, just after systemd's binfmt
# trigger: put back what it flushed and no binfmt.d file registered again,
# then register the entries of installed packages that never call the
# hooks where systemd's trigger does not run.
# $PPID is rpm, which names the transaction. See docs/lifecycle.md, "File
# triggers". A binfmt problem never fails the transaction.
if [ -x /usr/bin/binfmtctl ]; then /usr/bin/binfmtctl trigger guard-after "$PPID" || :; fi
