# %transfiletriggerun: before the transaction, the binfmt.d files that
# will be removed or replaced are on standard input while they still exist;
# record what they define and which packages own them.
# $PPID is rpm, which names the transaction. See docs/lifecycle.md, "File
# triggers". A binfmt problem never fails the transaction.
if [ -x /usr/bin/binfmtctl ]; then /usr/bin/binfmtctl trigger leaving "$PPID" || :; fi
