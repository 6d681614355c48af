"""Userspace side: running unchanged programs against a kernel."""
