"""PgBouncer for dbkeeper: validated settings, renderer, admin console, local runner."""
