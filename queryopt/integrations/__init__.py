"""Integrations with other libraries.

Each integration imports its library only when it is imported itself, so
``import queryopt`` never pulls in SQLAlchemy.
"""
