"""The store: tables, SQL, migrations and the dialect differences between SQLite and
PostgreSQL. Nothing outside this package checks which dialect it runs on."""
