"""queryopt's own tables: versioned migrations (SQL files in ``migrations/``) applied under an advisory lock."""

from queryopt.schema.migrator import Migration, available_migrations, migrate, pending_migrations

__all__ = ["Migration", "available_migrations", "migrate", "pending_migrations"]
