# %preun: on erase ($1 = 0), unregister exactly what this package
# registered; on the old side of an upgrade, nothing. Never fails: a
# failing %preun would block the erase.
/usr/bin/binfmtctl hook preun '%{name}-%{version}-%{release}' "$1" || :
