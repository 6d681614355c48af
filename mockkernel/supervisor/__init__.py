"""The supervisor: programs of any kind run as a process tree served by one mock kernel."""
