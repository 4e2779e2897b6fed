"""Verified backups, restore and maintenance of the warehouse (SQLite or PostgreSQL).

``catalogue``: backup files, manifests, listing, retention, identity checks; ``sqlite`` and
``postgres``: taking, verifying and restoring a backup; ``dispatch``: the same for the warehouse at a
URL; ``maintenance``: VACUUM/ANALYZE and the quick integrity probe. Import each name from its module.
"""
