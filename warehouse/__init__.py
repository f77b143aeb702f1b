"""The DuckDB warehouse: connection, schema and migrations, run log, ingest, export.

Every SQL statement of the project lives in this package.
"""

from warehouse.db import DEFAULT_DB, connect, db_path, transaction
from warehouse.schema import SCHEMA_VERSION, migrate

__all__ = ["DEFAULT_DB", "SCHEMA_VERSION", "connect", "db_path", "migrate", "transaction"]
