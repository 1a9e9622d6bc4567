"""A local emulator of the target-communications API: WSGI app, SQLite store, seed, fault injection."""
