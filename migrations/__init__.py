"""queryopt's own schema, as forward-only SQL migrations.

Each file ``NNNN_name.sql`` is applied once, in version order, inside one
transaction with ``search_path`` set to queryopt's schema (``queryopt`` unless
configured), so the files name their objects without a schema. Applied versions
are kept in that schema's ``schema_migrations`` table, never the application's.
Installed, this folder is the package ``queryopt.migrations``.
"""
