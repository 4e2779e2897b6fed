"""`kaizen restore` refuses a file that is not this project's backup, in one clear line, unless --force."""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from kaizen_pipeline.cli import main
from kaizen_pipeline.settings import Settings
from kaizen_pipeline.warehouse import Warehouse
from kaizen_pipeline.warehouse.backup.catalogue import BackupVerificationError
from kaizen_pipeline.warehouse.backup.dispatch import restore_warehouse
from kaizen_pipeline.warehouse.backup.sqlite import backup_sqlite, sqlite_path


@pytest.fixture
def db(warehouse: Warehouse) -> Path:
    path = sqlite_path(warehouse.url)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO price_points (token_id, ts, market_id, outcome, price) "
            "VALUES ('tok', '2026-01-01 00:00:00', 'm1', 'Yes', 0.5)"
        )
    return path


def _foreign(tmp_path: Path) -> Path:
    raw = tmp_path / "foreign.sqlite"
    with sqlite3.connect(raw) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('not a warehouse')")
    gz = tmp_path / "foreign.sqlite.gz"
    gz.write_bytes(gzip.compress(raw.read_bytes()))
    return gz


def _restore(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["restore", "--yes", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _price_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM price_points").fetchone()[0]


def test_foreign_sqlite_backup_is_refused_naming_what_is_missing(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = _foreign(tmp_path)
    code, output = _restore(capsys, "--backup", str(foreign))
    assert code != 0
    assert "verified (" not in output
    assert "no manifest" in output and "missing tables" in output and "alert_history" in output
    assert "Traceback" not in output
    assert _price_rows(db) == 1  # the warehouse is untouched
    with pytest.raises(BackupVerificationError, match="missing tables"):
        restore_warehouse(foreign, f"sqlite:///{db}")


def test_foreign_backup_with_a_copied_manifest_is_refused_for_its_schema(
    db: Path, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = backup_sqlite(db, settings.database.backup_dir, keep=7)
    foreign = _foreign(tmp_path)
    # a manifest that vouches for the foreign file's hash and counts: only the schema check can catch it
    manifest = json.loads(Path(str(real.path) + ".json").read_text())
    manifest.update(sha256=hashlib.sha256(foreign.read_bytes()).hexdigest(), row_counts={"notes": 1})
    Path(str(foreign) + ".json").write_text(json.dumps(manifest))
    code, output = _restore(capsys, "--backup", str(foreign))
    assert code != 0
    assert "missing tables" in output and "no manifest" not in output
    assert _price_rows(db) == 1


def test_non_gzip_file_is_refused_in_one_clear_line(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.sqlite.gz"
    plain.write_bytes((tmp_path / "warehouse.sqlite").read_bytes())
    code, output = _restore(capsys, "--backup", str(plain), "--force")
    assert code != 0 and "Traceback" not in output
    assert "not a gzip file" in output
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    code, output = _restore(capsys, "--backup", str(text))
    assert code != 0 and "Traceback" not in output
    assert "not a backup file" in output
    assert _price_rows(db) == 1


def test_force_restores_a_foreign_but_sound_database(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = _restore(capsys, "--backup", str(_foreign(tmp_path)), "--force")
    assert code == 0, output
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT body FROM notes").fetchone()[0] == "not a warehouse"


def test_a_real_backup_still_restores(
    db: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    info = backup_sqlite(db, settings.database.backup_dir, keep=7)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM price_points")
    code, output = _restore(capsys, "--backup", str(info.path))
    assert code == 0, output
    assert "verified" in output and _price_rows(db) == 1


def test_a_backup_from_an_older_release_restores_and_gains_the_new_tables(
    db: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A table added since the backup was taken is no reason to refuse it: the warehouse creates it."""
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE market_outcomes")
    info = backup_sqlite(db, settings.database.backup_dir, keep=7)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM price_points")
    code, output = _restore(capsys, "--backup", str(info.path))
    assert code == 0, output
    assert _price_rows(db) == 1
    reopened = Warehouse(settings.database.sqlalchemy_url())
    reopened.dispose()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM market_outcomes").fetchone()[0] == 0
