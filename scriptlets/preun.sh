# %preun: on erase ($1 = 0), unregister exactly what this package
# registered, and (--ships-helper: this package ships /usr/bin/binfmtctl)
# guard the end of the transaction, where no helper may be left to put
# back what systemd's binfmt trigger flushes (docs/lifecycle.md, "The
# erase guard"). On the old side of an upgrade or a downgrade, nothing:
# the binfmtctl on disk then may be an older one, without the option.
# Never fails: a failing %preun would block the erase.
[ "$1" != 0 ] || /usr/bin/binfmtctl hook preun --ships-helper '%{name}-%{version}-%{release}' 0 || :
