"""Event store on PostgreSQL (asyncpg): append, read, outbox relay, inbox, migrations."""
