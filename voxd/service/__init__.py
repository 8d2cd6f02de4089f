"""Running for real: the daemon, its worker and inbox watcher, the job store, notifications and systemd."""
