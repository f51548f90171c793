# %transfiletriggerin -P 1000701, just before systemd's binfmt
# trigger (1000700), which flushes every entry: snapshot the live table.
# $PPID is rpm, which names the transaction. See docs/lifecycle.md, "File
# triggers". A binfmt problem never fails the transaction.
# Only systemd flushes (its trigger, or a restart of systemd-binfmt.service),
# and only where it runs: elsewhere there is nothing to guard.
if [ -d /run/systemd/system ] && [ -x /usr/bin/binfmtctl ]; then /usr/bin/binfmtctl trigger guard-before "$PPID" || :; fi
