# %post: register this package's binfmt.d entries, or on an upgrade,
# reinstall or downgrade register them again so that F entries pin the
# new interpreters, and drop the entries this version no longer defines.
# A binfmt problem never fails the transaction; binfmtctl prints it.
/usr/bin/binfmtctl hook post '%{name}-%{version}-%{release}' "$1" || :
