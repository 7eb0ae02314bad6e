"""Durable storage: feedback, the cards we issued, and the JWT replay store.

SQLAlchemy Core lets one schema run on the embedded SQLite default and on PostgreSQL
for several instances (select with CDS_DATABASE_URL). Writes are committed before
the caller acknowledges anything, so an acknowledged entry survives a crash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

metadata = MetaData()

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Hash of the entry's content: a retried delivery of the same entry is stored once.
    Column("dedupe_key", String(64), nullable=False, unique=True),
    Column("service_id", String(256), nullable=False),
    Column("card_uuid", String(256), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("accepted_suggestions", Text, nullable=False, default="[]"),
    Column("override_system", String(1024)),
    Column("override_code", String(256)),
    Column("override_display", String(1024)),
    Column("user_comment", Text),
    Column("outcome_timestamp", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

issued_cards = Table(
    "issued_cards",
    metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service_id", String(256), nullable=False),
    Column("hook", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("indicator", String(16), nullable=False),
    Column("suggestions", Text, nullable=False, default="[]"),  # [{"uuid", "label"}]
    Column("issued_at", DateTime(timezone=True), nullable=False),
)
Index("ix_issued_cards_issued_at", issued_cards.c.issued_at)

jwt_replay = Table(
    "jwt_replay",
    metadata,
    Column("issuer", String(512), primary_key=True),
    Column("jti", String(512), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)


class StorageError(RuntimeError):
    """The database could not be written; the caller answers 503, never acknowledges."""


@dataclass(frozen=True)
class FeedbackEntry:
    service_id: str
    card_uuid: str
    outcome: str
    accepted_suggestions: tuple[str, ...]
    override_system: str | None
    override_code: str | None
    override_display: str | None
    user_comment: str | None
    outcome_timestamp: datetime

    def dedupe_key(self) -> str:
        canonical = json.dumps(
            [
                self.service_id, self.card_uuid, self.outcome, sorted(self.accepted_suggestions),
                self.override_system, self.override_code, self.user_comment,
                self.outcome_timestamp.astimezone(UTC).isoformat(),
            ],
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedCard:
    card_uuid: str
    service_id: str
    hook: str
    kind: str
    indicator: str
    suggestions: tuple[tuple[str, str], ...]  # (uuid, label)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers and one writer share the file across workers; FULL syncs each
    # commit to disk so an acknowledged write survives a crash or power loss.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 10, "check_same_thread": False}
        self.engine: Engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self) -> None:
        try:
            metadata.create_all(self.engine, checkfirst=True)
        except SQLAlchemyError as error:
            # Several workers may race to create the tables; the loser finds them made.
            if not self._tables_exist():
                raise StorageError(
                    f"cannot create the database schema: {type(error).__name__}"
                ) from None

    def _tables_exist(self) -> bool:
        from sqlalchemy import inspect

        names = set(inspect(self.engine).get_table_names())
        return {"feedback", "issued_cards", "jwt_replay"} <= names

    def _insert_ignoring_duplicates(self, table: Table):
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing()

    def save_feedback(self, entries: Iterable[FeedbackEntry]) -> int:
        """Store entries in one transaction; returns how many were new."""
        now = datetime.now(UTC)
        rows = [
            {
                "dedupe_key": e.dedupe_key(),
                "service_id": e.service_id,
                "card_uuid": e.card_uuid,
                "outcome": e.outcome,
                "accepted_suggestions": json.dumps(list(e.accepted_suggestions)),
                "override_system": e.override_system,
                "override_code": e.override_code,
                "override_display": e.override_display,
                "user_comment": e.user_comment,
                "outcome_timestamp": e.outcome_timestamp,
                "received_at": now,
            }
            for e in entries
        ]
        if not rows:
            return 0
        try:
            with self.engine.begin() as conn:
                new = 0
                statement = self._insert_ignoring_duplicates(feedback)
                for row in rows:
                    new += conn.execute(statement, row).rowcount or 0
                return new
        except SQLAlchemyError as error:
            raise StorageError(f"feedback could not be stored: {type(error).__name__}") from None

    def record_cards(self, cards: Iterable[IssuedCard]) -> None:
        now = datetime.now(UTC)
        rows = [
            {
                "card_uuid": c.card_uuid,
                "service_id": c.service_id,
                "hook": c.hook,
                "kind": c.kind,
                "indicator": c.indicator,
                "suggestions": json.dumps([{"uuid": u, "label": lbl} for u, lbl in c.suggestions]),
                "issued_at": now,
            }
            for c in cards
        ]
        if not rows:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(self._insert_ignoring_duplicates(issued_cards), rows)
        except SQLAlchemyError as error:
            message = f"issued cards could not be recorded: {type(error).__name__}"
            raise StorageError(message) from None

    def claim_jti(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        """True if this (issuer, jti) was never seen before; False for a replay."""
        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    self._insert_ignoring_duplicates(jwt_replay),
                    {"issuer": issuer, "jti": jti, "expires_at": expires_at},
                )
                if result.rowcount:
                    # Keep the table small: expired ids can no longer be replayed.
                    conn.execute(delete(jwt_replay).where(
                        jwt_replay.c.expires_at < datetime.now(UTC)
                    ))
                return bool(result.rowcount)
        except SQLAlchemyError as error:
            raise StorageError(f"replay store unavailable: {type(error).__name__}") from None

    def feedback_rows(self, since: datetime | None = None) -> list[dict]:
        query = select(feedback).order_by(feedback.c.id)
        if since is not None:
            query = query.where(feedback.c.outcome_timestamp >= since)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def issued_card_rows(self, since: datetime | None = None) -> list[dict]:
        query = select(issued_cards).order_by(issued_cards.c.issued_at)
        if since is not None:
            query = query.where(issued_cards.c.issued_at >= since)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def check_writable(self) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(text("SELECT 1"))
                conn.execute(delete(jwt_replay).where(jwt_replay.c.jti == "__readiness__"))
            return True
        except SQLAlchemyError:
            return False
