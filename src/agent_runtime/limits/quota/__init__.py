"""Daily token and monthly USD quotas, enforced by reserve-then-settle, on memory, SQLite and Redis."""
