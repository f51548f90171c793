/bin/systemctl --system try-restart systemd-binfmt.service &>/dev/null || :
