# %filetriggerin: once per package that installs binfmt.d files, before its
# %post: keep the live table as it is now, for when systemd's binfmt trigger
# runs before the guard's first half (as rpm does when this package is
# installed or upgraded in the same transaction).
# $PPID is rpm, which names the transaction. See docs/lifecycle.md, "File
# triggers". A binfmt problem never fails the transaction.
# Only systemd flushes (its trigger, or a restart of systemd-binfmt.service),
# and only where it runs: elsewhere there is nothing to guard.
if [ -d /run/systemd/system ] && [ -x /usr/bin/binfmtctl ]; then /usr/bin/binfmtctl trigger early "$PPID" || :; fi
