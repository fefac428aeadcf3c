"""The exception-class table on records the real software wrote: infrastructure is told from application."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from analyzer.api import open_bundle
from analyzer.categories import CATEGORIES
from analyzer.sources.exceptions import TableError, classify, parse_table, table

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "excerpts"


def _categories(sample: str) -> dict[str | None, str | None]:
    """exc_type → exc_category of every record of a sample that carries an exception."""
    ev = open_bundle(SAMPLES / sample).events
    rows = ev.filter(pl.col("exc_type").is_not_null()).select("exc_type", "exc_category").unique().rows()
    return dict(rows)


def test_the_table_loads_and_names_known_categories_with_sources() -> None:
    assert len(table()) >= 20
    assert all(e.category in CATEGORIES and e.source for e in table())


@pytest.mark.parametrize(("text", "problem"), [
    ('[[entry]]\ncategory = "no.such"\nclasses = ["X"]\nsource = "s"', "unknown category"),
    ('[[entry]]\ncategory = "lock.wait"\nsource = "s"', "neither classes nor message"),
    ('[[entry]]\ncategory = "lock.wait"\nclasses = ["X"]', "no source"),
    ('[[entry]]\ncategory = "lock.wait"\nmessage = "("\nsource = "s"', "bad message regex"),
])
def test_a_bad_table_says_which_entry_and_why(text: str, problem: str) -> None:
    with pytest.raises(TableError, match=problem):
        parse_table(text)


def test_lock_timeouts_of_three_drivers_are_lock_waits() -> None:
    found = _categories("lock-timeouts")
    assert found["psycopg2.errors.LockNotAvailable"] == "lock.wait"
    assert found["pymysql.err.OperationalError"] == "lock.wait"  # (1205, 'Lock wait timeout exceeded; ...')
    assert found["redis.exceptions.LockNotOwnedError"] == "lock.wait"


@pytest.mark.parametrize(("sample", "exc_type", "category"), [
    ("deadlock-postgres", "psycopg2.errors.DeadlockDetected", "deadlock.database"),
    ("deadlock-mariadb", "pymysql.err.OperationalError", "deadlock.database"),
    ("sqlalchemy-pool-exhausted", "sqlalchemy.exc.TimeoutError", "db.pool_exhausted"),
    ("serialization-error", "kombu.exceptions.EncodeError", "task.serialization"),
    ("app-exception", "ZeroDivisionError", None),
    ("unclassified-errors", "json.decoder.JSONDecodeError", None),  # an application's own JSON, not kombu's
])
def test_real_exceptions_get_their_category_and_application_errors_none(sample: str, exc_type: str,
                                                                         category: str | None) -> None:
    assert _categories(sample)[exc_type] == category


def test_a_kombu_error_whose_repr_lost_its_module_is_known_by_the_frame_that_raised_it() -> None:
    # https://github.com/getsentry/sentry-python/issues/1353: the traceback is cut before kombu's line
    ev = open_bundle(CORPUS / "sentry-python-1353-reset.log").events
    task = ev.filter(pl.col("message").str.contains("raised unexpected", literal=True))
    assert task.get_column("exc_type").to_list() == ["OperationalError"]
    assert task.get_column("exc_category").to_list() == ["broker.connection_lost"]


def test_values_are_masked_so_one_error_is_one_template() -> None:
    ev = open_bundle(SAMPLES / "unclassified-errors").events
    errors = ev.filter(pl.col("level") == "ERROR")
    assert errors.height == 3
    [template] = errors.get_column("template").unique().to_list()
    assert template == "proj.sync_inventory[<id>]: inventory sync failed for sku <*>"


def test_records_that_cannot_carry_an_error_are_left_alone() -> None:
    ev = open_bundle(SAMPLES / "healthy").events
    assert ev.get_column("exc_category").null_count() == ev.height
    assert ev.filter(pl.col("level") == "INFO").get_column("template").null_count() == ev.filter(
        pl.col("level") == "INFO").height
    assert classify(ev.head(0)).columns == ev.columns
