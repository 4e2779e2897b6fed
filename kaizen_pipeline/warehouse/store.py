"""The one warehouse module: engine setup, idempotent batched upserts and reads.

The same code runs on SQLite (WAL mode, the default) and PostgreSQL; only the URL differs.
"""

from __future__ import annotations

import contextlib
import math
import operator
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from kaizen_pipeline.ops.redact import value_redactor
from kaizen_pipeline.warehouse.schema import metadata

DEFAULT_BATCH_SIZE = 2000
# replace_changed: floats this close (relative) are the same value computed along another path
FLOAT_RTOL = 1e-9
# Any fixed 64-bit number: it names the lock the processes creating the schema take in turn.
SCHEMA_LOCK_KEY = 0x6B61697A656E


@dataclass(frozen=True)
class UpsertResult:
    rows_written: int
    new_rows: int


def to_naive_utc(value: Any) -> datetime | None:
    """Convert a datetime, pandas Timestamp, ISO string or unix seconds to naive UTC."""
    if type(value) is datetime:  # the common case, without a pandas Timestamp round trip
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if is_missing(value):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return datetime.fromtimestamp(float(value), UTC).replace(tzinfo=None)
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        return None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()


def is_missing(value: Any) -> bool:
    """True for every scalar form of "no value": None, pd.NA, NaT (pandas or numpy) and NaN.

    Tested before any type: pd.NaT is a ``datetime`` instance and NaN a ``float``, so a type
    branch taken first would send them to the database as values.
    """
    if value is None or value is pd.NA or isinstance(value, type(pd.NaT)):
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    if isinstance(value, (np.datetime64, np.timedelta64)):
        return bool(np.isnat(value))
    return False


def _clean_value(value: Any) -> Any:
    if is_missing(value):
        return None
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return to_naive_utc(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return value


def _column_values(column: pd.Series, redact_one: Callable[[Any], Any]) -> np.ndarray:
    """One column as Python values for the driver: missing -> None, datetimes naive UTC, strings redacted.

    Typed columns convert in one numpy step; only object and string columns, the ones that can hold
    text, go value by value (a frame of prices is then as cheap to store as its size).
    """
    missing = column.isna().to_numpy()
    kind = column.dtype.kind
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
        kind = "M"
    if kind == "M":
        values = np.asarray(column.array.to_pydatetime(), dtype=object)
    elif kind in "fiub" and not isinstance(column.dtype, pd.api.extensions.ExtensionDtype):
        values = column.to_numpy().astype(object)  # numpy scalars become Python int, float and bool
    elif (
        isinstance(column.dtype, pd.StringDtype) or pd.api.types.infer_dtype(column, skipna=True) == "string"
    ):
        # ids and labels repeat down a column: redact each distinct string once
        codes, uniques = pd.factorize(column)
        cleaned = np.array([redact_one(_clean_value(v)) for v in uniques] + [None], dtype=object)
        values = cleaned[codes]  # code -1 (missing) picks the trailing None
    else:
        values = np.array([redact_one(_clean_value(v)) for v in column.to_numpy(dtype=object)], dtype=object)
    if missing.any():
        values[missing] = None
    return values


def _stored_mappings(
    rows: Iterable[Mapping[str, Any]], redact_one: Callable[[Any], Any]
) -> list[dict[str, Any]]:
    """Rows given as mappings, cleaned and redacted like a frame's; plain values pass as they are."""
    redacted: dict[str, Any] = {}  # ids and labels repeat across rows: redact each distinct string once
    stored = []
    for row in rows:
        record = {}
        for key, value in row.items():
            kind = type(value)
            if kind is str:
                clean = redacted.get(value)
                if clean is None:
                    clean = redacted[value] = redact_one(value)
            elif value is None or kind is int or kind is bool:
                clean = value
            elif kind is float:
                clean = None if value != value else value  # NaN is missing
            else:
                clean = redact_one(_clean_value(value))
            record[key] = clean
        stored.append(record)
    return stored


def _stored(rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Cleaned rows with every string redacted: the warehouse is a boundary no secret crosses."""
    if not isinstance(rows, pd.DataFrame):
        return _stored_mappings(rows, value_redactor())
    if rows.columns.duplicated().any():
        raise ValueError(
            f"duplicate column names in rows to store: {sorted(rows.columns[rows.columns.duplicated()])}"
        )
    redact_one = value_redactor()
    names = [str(c) for c in rows.columns]
    columns = [_column_values(rows.iloc[:, i], redact_one) for i in range(rows.shape[1])]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


# Column types whose SQLite binding is the value itself (DateTime: one fixed text format, below).
_SQLITE_DRIVER_TYPES = (sa.String, sa.Integer, sa.Float, sa.Boolean, sa.DateTime)


def _sqlite_datetime(value: Any) -> Any:
    """SQLAlchemy's SQLite DATETIME text (microseconds always written), so keys compare equal either way."""
    if isinstance(value, datetime):
        return value.isoformat(" ", "microseconds")
    raise TypeError(f"not a datetime: {type(value).__name__}")


def _read_typed(
    conn: sa.Connection, select: sa.Select, table: sa.Table, columns: Sequence[str]
) -> pd.DataFrame:
    """``select`` as a frame read from the driver's rows, DateTime columns parsed in one vectorized step
    (SQLAlchemy's per-value result processing cost seconds on a month of features)."""
    result = conn.execute(select)
    raw = result.cursor.fetchall() if result.cursor is not None else []
    frame = pd.DataFrame(list(raw), columns=list(result.keys()))
    for col in columns:
        if isinstance(table.c[col].type, sa.DateTime) and len(frame):
            frame[col] = pd.to_datetime(frame[col], format="ISO8601")
    return frame


def write_batches(conn: sa.Connection, stmt: Any, table: sa.Table, records: list[dict[str, Any]]) -> None:
    """Execute the insert ``stmt`` for ``records`` (cleaned rows with the same keys), in batches.

    On SQLite the rows go to the driver as tuples: SQLAlchemy's per-value bind processing cost more
    than the driver's own insert on large writes. Anything the fast path does not know (another
    column type, a value of an unexpected type) goes through SQLAlchemy unchanged.
    """
    if not records:
        return
    columns = list(records[0])
    if conn.dialect.name == "sqlite" and all(
        c in table.c and isinstance(table.c[c].type, _SQLITE_DRIVER_TYPES) for c in columns
    ):
        compiled = stmt.compile(dialect=conn.dialect, column_keys=columns)
        order = list(compiled.positiontup or ())
        if set(order) == set(columns):
            stamps = [c for c in columns if isinstance(table.c[c].type, sa.DateTime)]
            rows: list[tuple[Any, ...]] | None
            try:
                # column by column: one comprehension per column beats a generator per row
                values = []
                for c in order:
                    column = [rec[c] for rec in records]
                    if c in stamps:
                        column = [None if v is None else _sqlite_datetime(v) for v in column]
                    values.append(column)
                rows = list(zip(*values, strict=True))
            except (TypeError, KeyError):  # SQLAlchemy names the problem
                rows = None
            if rows is not None:
                for start in range(0, len(rows), DEFAULT_BATCH_SIZE):
                    conn.exec_driver_sql(compiled.string, rows[start : start + DEFAULT_BATCH_SIZE])
                return
    for start in range(0, len(records), DEFAULT_BATCH_SIZE):
        conn.execute(stmt, records[start : start + DEFAULT_BATCH_SIZE])


SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


def _enable_wal(cur: Any) -> None:
    """Switch the file to WAL once; WAL lets readers (the UI, backups) work while an asset writes.

    The switch needs the file to itself and SQLite answers "database is locked" at once instead of
    waiting, so parallel steps opening a new warehouse retry until one of them has made it WAL
    (the mode is stored in the file).
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _install_sqlite_pragmas(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
        _enable_wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


def create_warehouse_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their directory created and WAL mode."""
    sa_url = sa.make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        if sa_url.database and sa_url.database != ":memory:":
            Path(sa_url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(sa_url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        _install_sqlite_pragmas(engine)
        return engine
    return sa.create_engine(sa_url, pool_pre_ping=True)


def _missing_columns(conn: sa.Connection) -> list[tuple[sa.Table, sa.Column]]:
    """Nullable columns of existing tables that the database lacks (a warehouse made by an older release)."""
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names())
    missing = []
    for table in metadata.sorted_tables:
        if table.name not in existing:
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                if not column.nullable:
                    raise RuntimeError(
                        f"warehouse table {table.name}: column {column.name} is missing and NOT NULL; "
                        "restore from a backup made by this release or recreate the table"
                    )
                missing.append((table, column))
    return missing


class Warehouse:
    """System of record for every asset: tables from ``schema.metadata``, idempotent writes."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.engine = create_warehouse_engine(url)
        if create:
            self.create_all()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_all(self) -> None:
        """Create missing tables; safe when several step processes open a fresh warehouse at once.

        ``create_all`` checks then creates, so two processes can both see a table missing. Holding
        the database's write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock) across
        the check and the create makes the second process wait and then find every table there.
        """
        with self.engine.connect() as conn:
            if set(metadata.tables) <= set(sa.inspect(conn).get_table_names()) and not _missing_columns(conn):
                return  # the usual case: no lock, so a step never waits behind another's long write
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            metadata.create_all(conn)
            for table, column in _missing_columns(conn):
                # additive schema changes only: a nullable column added by a newer release
                ddl = column.type.compile(dialect=conn.dialect)
                conn.exec_driver_sql(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {ddl}')
            conn.commit()

    def table(self, name: str) -> sa.Table:
        return metadata.tables[name]

    def dialect_insert(self, table: sa.Table) -> Any:
        """INSERT with ON CONFLICT support for this dialect: the one upsert statement builder."""
        if self.dialect == "sqlite":
            return sqlite.insert(table)
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        raise NotImplementedError(f"upserts are implemented for sqlite and postgresql, not {self.dialect}")

    def count(self, table: sa.Table | str, where: sa.ColumnElement[bool] | None = None) -> int:
        table = self.table(table) if isinstance(table, str) else table
        stmt = sa.select(sa.func.count()).select_from(table)
        if where is not None:
            stmt = stmt.where(where)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def upsert(
        self,
        table: sa.Table | str,
        rows: pd.DataFrame | Iterable[Mapping[str, Any]],
        *,
        update: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> UpsertResult:
        """Insert rows, or update non-key columns when the natural key exists (``update=False``: keep).

        Rows with the same key inside one call collapse to the last one, so a call is one
        consistent statement on both dialects.
        """
        table = self.table(table) if isinstance(table, str) else table
        records = _stored(rows)
        if not records:
            return UpsertResult(0, 0)
        key_cols = [c.name for c in table.primary_key.columns]
        try:
            key_of = operator.itemgetter(*key_cols)
            records = list({key_of(rec): rec for rec in records}.values())
        except KeyError:  # mappings may leave a key column out: it is then NULL
            records = list({tuple(rec.get(k) for k in key_cols): rec for rec in records}.values())
        columns = list(records[0].keys())
        update_cols = [c for c in columns if c not in key_cols]
        with self.engine.begin() as conn:
            before = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            stmt = self.dialect_insert(table)
            if update and update_cols:
                stmt = stmt.on_conflict_do_update(
                    index_elements=key_cols,
                    set_={c: stmt.excluded[c] for c in update_cols},
                )
            else:
                stmt = stmt.on_conflict_do_nothing(index_elements=key_cols)
            for start in range(0, len(records), batch_size):
                write_batches(conn, stmt, table, records[start : start + batch_size])
            after = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        return UpsertResult(rows_written=len(records), new_rows=int(after - before))

    def replace(
        self,
        table: sa.Table | str,
        rows: pd.DataFrame | Iterable[Mapping[str, Any]],
        where: sa.ColumnElement[bool] | None = None,
    ) -> UpsertResult:
        """Delete the rows matching ``where`` (all rows when None) and write ``rows``, atomically.

        For derived tables that are recomputed as a whole window on each materialization.
        """
        table = self.table(table) if isinstance(table, str) else table
        records = _stored(rows)
        with self.engine.begin() as conn:
            before = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            delete = table.delete() if where is None else table.delete().where(where)
            conn.execute(delete)
            write_batches(conn, table.insert(), table, records)
            after = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        return UpsertResult(rows_written=len(records), new_rows=max(0, int(after - before)))

    def replace_changed(
        self,
        table: sa.Table | str,
        rows: pd.DataFrame,
        where: sa.ColumnElement[bool] | None = None,
        *,
        ignore: Sequence[str] = ("computed_at",),
    ) -> UpsertResult:
        """End in the same state as :meth:`replace`, writing only the difference, atomically.

        For derived tables recomputed over a long window each cycle: most rows come out as they were,
        so rows equal to the stored ones (``ignore`` columns aside; floats within FLOAT_RTOL) are left alone, stored rows
        missing from ``rows`` are deleted and the rest upserted. ``rows_written`` counts the rows
        written. Needs a primary key.
        """
        table = self.table(table) if isinstance(table, str) else table
        key_cols = [c.name for c in table.primary_key.columns]
        if not key_cols:
            raise ValueError(f"{table.name}: replace_changed needs a primary key")
        compare = [c for c in rows.columns if c not in key_cols and c not in ignore and c in table.c]
        with self.engine.begin() as conn:
            select = sa.select(*(table.c[c] for c in key_cols + compare))
            if where is not None:
                select = select.where(where)
            stored = _read_typed(conn, select, table, key_cols + compare)
            new = rows.drop_duplicates(key_cols, keep="last")
            for col in key_cols + compare:
                # the same dtype on both sides: a datetime64[us] key against datetime64[ns] (or an empty
                # object column) makes pandas merge Python objects row by row
                if col in new and col in stored and stored[col].dtype != new[col].dtype:
                    with contextlib.suppress(TypeError, ValueError):
                        stored[col] = stored[col].astype(new[col].dtype)
            merged = new[key_cols + compare].merge(
                stored, on=key_cols, how="outer", suffixes=("", "__stored"), indicator=True
            )
            fresh = (merged["_merge"] == "left_only").to_numpy()
            both = (merged["_merge"] == "both").to_numpy()
            differs = np.zeros(len(merged), dtype=bool)
            for col in compare:
                a, b = merged[col], merged[f"{col}__stored"]
                if pd.api.types.is_float_dtype(a) and pd.api.types.is_numeric_dtype(b):
                    # a rolling window restarted elsewhere differs in the last bits: that is no change
                    same = np.isclose(a.to_numpy(float), b.to_numpy(float), rtol=FLOAT_RTOL, atol=0.0)
                else:
                    same = (a == b).fillna(False).to_numpy(dtype=bool)
                same = same | (a.isna() & b.isna()).to_numpy()
                differs |= both & ~same
            gone = merged.loc[(merged["_merge"] == "right_only").to_numpy(), key_cols]
            if not gone.empty:
                params = _stored(gone.rename(columns={c: f"k_{c}" for c in key_cols}))
                delete = table.delete().where(
                    sa.and_(*(table.c[c] == sa.bindparam(f"k_{c}") for c in key_cols))
                )
                conn.execute(delete, params)
            if (fresh | differs).sum() == len(new):  # every row is new or changed (a first run)
                write = new
            else:
                write = new.merge(merged.loc[fresh | differs, key_cols], on=key_cols, how="inner")
            records = _stored(write)
            if records:
                columns = list(records[0].keys())
                stmt = self.dialect_insert(table)
                update_cols = [c for c in columns if c not in key_cols]
                stmt = (
                    stmt.on_conflict_do_update(
                        index_elements=key_cols, set_={c: stmt.excluded[c] for c in update_cols}
                    )
                    if update_cols
                    else stmt.on_conflict_do_nothing(index_elements=key_cols)
                )
                write_batches(conn, stmt, table, records)
        return UpsertResult(rows_written=len(records), new_rows=int(fresh.sum()))

    def read_frame(
        self,
        query: str | sa.Select | sa.TextClause,
        params: Mapping[str, Any] | None = None,
        parse_dates: Sequence[str] | None = None,
        *,
        raw: bool = False,
    ) -> pd.DataFrame:
        """Run a SELECT and return a DataFrame (``parse_dates`` columns become datetime64).

        ``raw=True`` reads the driver's rows directly, skipping SQLAlchemy's per-row type processing
        (several times faster on large reads; SQLite datetimes then arrive as strings, so list them
        in ``parse_dates``).
        """
        stmt = sa.text(query) if isinstance(query, str) else query
        with self.engine.connect() as conn:
            result = conn.execute(stmt, dict(params or {}))
            columns = list(result.keys())
            if raw and result.cursor is not None:
                rows = result.cursor.fetchall()
            else:
                # plain tuples: pandas probes each Row for attributes, and a Row answers a miss by raising
                rows = [tuple(row) for row in result.fetchall()]
            frame = pd.DataFrame(rows, columns=columns)
        for col in parse_dates or ():
            if col in frame:
                frame[col] = pd.to_datetime(frame[col], format="ISO8601")
        return frame

    def scalar(self, query: str | sa.Select | sa.TextClause, params: Mapping[str, Any] | None = None) -> Any:
        stmt = sa.text(query) if isinstance(query, str) else query
        with self.engine.connect() as conn:
            return conn.execute(stmt, dict(params or {})).scalar()

    def table_row_counts(self) -> dict[str, int]:
        inspector = sa.inspect(self.engine)
        existing = set(inspector.get_table_names())
        return {name: self.count(tbl) for name, tbl in metadata.tables.items() if name in existing}

    def size_bytes(self) -> int:
        """On-disk size of the warehouse (SQLite file plus WAL, or the PostgreSQL database)."""
        if self.dialect == "sqlite":
            db = self.engine.url.database
            if not db or db == ":memory:":
                return 0
            return sum(p.stat().st_size for p in Path(db).parent.glob(Path(db).name + "*") if p.is_file())
        return int(self.scalar("SELECT pg_database_size(current_database())") or 0)

    def dispose(self) -> None:
        self.engine.dispose()
