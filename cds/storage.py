"""Durable storage: feedback, the cards we issued, and the JWT replay store.

SQLAlchemy Core lets one schema run on the embedded SQLite default and on PostgreSQL
for several instances (select with CDS_DATABASE_URL). Writes are committed before
the caller acknowledges anything, so an acknowledged entry survives a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
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
    and_,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

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
    # The authenticated client that sent it ("" with authentication off).
    Column("client_iss", String(2048), nullable=False, server_default=""),
    Column("client_tenant", String(256), nullable=False, server_default=""),
    # The entry's size as stored (FeedbackEntry.stored_bytes): quotas count bytes too.
    Column("stored_bytes", Integer, nullable=False, server_default="0"),
)
# Per-client quotas count recent rows.
Index("ix_feedback_client_received", feedback.c.client_iss, feedback.c.client_tenant,
      feedback.c.received_at)

issued_cards = Table(
    "issued_cards",
    metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service_id", String(256), nullable=False),
    Column("hook", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("indicator", String(16), nullable=False),
    # [{"uuid", "label", "kind"?}]: kind is the suggestion's stable name, when it has one
    Column("suggestions", Text, nullable=False, default="[]"),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    # The client the card went to ("" with authentication off): only it may send feedback.
    Column("client_iss", String(2048), nullable=False, server_default=""),
    Column("client_tenant", String(256), nullable=False, server_default=""),
    # [{"system", "code", "display"}] as the card offered them: the report shows our
    # display text, never the one a client sent back.
    Column("override_reasons", Text, nullable=False, server_default="[]"),
)
Index("ix_issued_cards_issued_at", issued_cards.c.issued_at)

# /readyz writes and deletes a row here: a check that writes nothing says "ready" on a
# full disk while every authenticated call fails.
readiness_probe = Table(
    "readiness_probe",
    metadata,
    Column("probe_id", String(64), primary_key=True),
    Column("payload", Text, nullable=False),
    Column("written_at", DateTime(timezone=True), nullable=False),
)

# Secrets the service makes for itself (the key of patient-handout links): made once by
# whichever worker or instance gets there first, then read by all, so a link one instance
# made opens on every other.
service_secrets = Table(
    "service_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

jwt_replay = Table(
    "jwt_replay",
    metadata,
    Column("issuer", String(512), primary_key=True),
    Column("jti", String(512), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)


class StorageError(RuntimeError):
    """The database could not be written; the caller answers 503, never acknowledges."""


# Any constant: serialises schema creation across instances starting together on PostgreSQL.
_SCHEMA_LOCK_KEY = 0x62_61_63_6C  # "bacl"


def _utc(moment: datetime) -> datetime:
    """Store instants in UTC: SQLite's DATETIME keeps no offset, so a +02:00 timestamp
    would otherwise be read back two hours off (PostgreSQL's timestamptz converts)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; a client-sent NUL must not turn into a 503 that
    the client retries forever, so it is stored as U+FFFD on every database alike."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


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
    client_iss: str = ""
    client_tenant: str = ""

    @property
    def stored_bytes(self) -> int:
        """What the entry takes in the database, near enough: its text fields in UTF-8."""
        texts = [self.service_id, self.card_uuid, self.outcome, self.override_system,
                 self.override_code, self.override_display, self.user_comment,
                 self.client_iss, self.client_tenant, *self.accepted_suggestions]
        return sum(len(t.encode("utf-8", "replace")) for t in texts if t) \
            + 4 * len(self.accepted_suggestions) + 64

    def dedupe_key(self) -> str:
        fields: list = [
            self.service_id, self.card_uuid, self.outcome, sorted(self.accepted_suggestions),
            self.override_system, self.override_code, self.user_comment,
            self.outcome_timestamp.astimezone(UTC).isoformat(),
        ]
        if self.client_iss:
            # Another client's identical entry must not make this one look like a retry.
            fields += [self.client_iss, self.client_tenant]
        canonical = json.dumps(fields, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class FeedbackQuota:
    """What one client may store in a window: entries and bytes."""

    client_iss: str
    client_tenant: str
    since: datetime
    max_entries: int
    max_bytes: int


class OverQuota(Exception):
    """Storing these entries would take the client past its quota; nothing was stored."""


@dataclass(frozen=True)
class IssuedCard:
    card_uuid: str
    service_id: str
    hook: str
    kind: str
    indicator: str
    suggestions: tuple[tuple[str, ...], ...]  # (uuid, label) or (uuid, label, kind)
    client_iss: str = ""
    client_tenant: str = ""
    override_reasons: tuple[tuple[str, str, str], ...] = ()  # (system, code, display)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers and one writer share the file across workers; FULL syncs each
    # commit to disk so an acknowledged write survives a crash or power loss.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _is_in_memory(database: str | None) -> bool:
    return not database or database == ":memory:" or "mode=memory" in database


def _create_private_file(path: str | None) -> None:
    """Create the SQLite file readable by its owner only (feedback holds clinicians'
    comments). SQLite gives its -wal and -shm files the same mode. An existing file
    keeps the mode its operator chose."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    # Exists already, or cannot be made: then the first connection says why.
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 10, "check_same_thread": False}
            if _is_in_memory(make_url(url).database):
                # why: each connection to ":memory:" is a database of its own, and the
                # default pool gives each thread one, so the issued-cards writer thread
                # would find no tables. One shared connection keeps one database.
                kwargs["poolclass"] = StaticPool
        self.engine: Engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            _create_private_file(self.engine.url.database)
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self, attempts: int = 5) -> None:
        # Several workers and instances create the schema at start-up. On PostgreSQL an
        # advisory lock makes them take turns (concurrent CREATE TABLE can fail on the
        # catalog's unique index); elsewhere the loser of a race retries and finds it made.
        for attempt in range(attempts):
            try:
                with self.engine.begin() as conn:
                    if self.dialect == "postgresql":
                        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                     {"key": _SCHEMA_LOCK_KEY})
                    metadata.create_all(conn, checkfirst=True)
                    _add_missing_columns(conn)
                return
            except SQLAlchemyError as error:
                if self._tables_exist():
                    return
                if attempt == attempts - 1:
                    raise StorageError(
                        f"cannot create the database schema: {type(error).__name__}"
                    ) from None
                time.sleep(0.2 * (attempt + 1))

    def _tables_exist(self) -> bool:
        from sqlalchemy import inspect

        try:
            names = set(inspect(self.engine).get_table_names())
        except SQLAlchemyError:
            return False
        return set(metadata.tables) <= names

    def _insert_ignoring_duplicates(self, table: Table):
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing()

    def _insert_if_new(self, conn, table: Table, row: dict) -> bool:
        """Insert unless the key exists; True when this call inserted the row.

        RETURNING, not rowcount: with psycopg 3 under SQLAlchemy 2.1 rowcount reads -1 for
        INSERT .. ON CONFLICT DO NOTHING, which made every replayed JWT look new.
        (SQLite has RETURNING since 3.35.)"""
        statement = self._insert_ignoring_duplicates(table).returning(*table.primary_key.columns)
        return conn.execute(statement, row).first() is not None

    def save_feedback(self, entries: Iterable[FeedbackEntry], quota: FeedbackQuota | None = None
                      ) -> int:
        """Store entries in one transaction; returns how many were new. With `quota`, the
        client's entries and bytes in its window are counted in the same transaction,
        after the insert, while no other writer of that client can commit (SQLite's write
        lock; a PostgreSQL advisory lock per client): over the quota, OverQuota is raised
        and nothing is stored. Counting before inserting, outside the transaction, let 20
        concurrent batches of 5 against a quota of 50 store 55 (issue 26.4)."""
        now = datetime.now(UTC)
        rows = [
            {
                "dedupe_key": e.dedupe_key(),
                "service_id": _text(e.service_id),
                "card_uuid": _text(e.card_uuid),
                "outcome": e.outcome,
                "accepted_suggestions": json.dumps(list(e.accepted_suggestions)),
                "override_system": _text(e.override_system),
                "override_code": _text(e.override_code),
                "override_display": _text(e.override_display),
                "user_comment": _text(e.user_comment),
                "outcome_timestamp": _utc(e.outcome_timestamp),
                "received_at": now,
                "client_iss": _text(e.client_iss),
                "client_tenant": _text(e.client_tenant),
                "stored_bytes": e.stored_bytes,
            }
            for e in entries
        ]
        if not rows:
            return 0
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    # Acknowledge only what is on disk, whatever the server's default.
                    conn.execute(text("SET LOCAL synchronous_commit = on"))
                    if quota is not None:
                        key = f"{quota.client_iss}|{quota.client_tenant}"
                        conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))
                stored = sum(self._insert_if_new(conn, feedback, row) for row in rows)
                if quota is not None and stored:
                    count, size = conn.execute(
                        select(func.count(), func.coalesce(func.sum(feedback.c.stored_bytes), 0))
                        .where(feedback.c.client_iss == _text(quota.client_iss),
                               feedback.c.client_tenant == _text(quota.client_tenant),
                               feedback.c.received_at >= _utc(quota.since))).one()
                    if count > quota.max_entries or size > quota.max_bytes:
                        raise OverQuota  # leaving the block rolls the insert back
                return stored
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
                "suggestions": json.dumps([_suggestion_json(s) for s in c.suggestions]),
                "issued_at": now,
                "client_iss": _text(c.client_iss),
                "client_tenant": _text(c.client_tenant),
                "override_reasons": json.dumps([
                    {"system": system, "code": code, "display": display}
                    for system, code, display in c.override_reasons
                ]),
            }
            for c in cards
        ]
        if not rows:
            return
        try:
            with self.engine.connect() as conn:
                sqlite = self.dialect == "sqlite"
                if sqlite:
                    # Card counts for governance survive a process crash with WAL's NORMAL
                    # sync and skip a per-request fsync; feedback keeps FULL (it is acked).
                    conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                try:
                    conn.execute(self._insert_ignoring_duplicates(issued_cards), rows)
                    conn.commit()
                finally:
                    conn.rollback()  # no-op after the commit; ends a failed transaction
                    if sqlite:
                        conn.exec_driver_sql("PRAGMA synchronous=FULL")
                        conn.commit()
        except SQLAlchemyError as error:
            message = f"issued cards could not be recorded: {type(error).__name__}"
            raise StorageError(message) from None

    def claim_jti(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        """True if this (issuer, jti) was never seen before; False for a replay."""
        try:
            with self.engine.begin() as conn:
                claimed = self._insert_if_new(
                    conn,
                    jwt_replay,
                    {"issuer": _text(issuer), "jti": _text(jti), "expires_at": _utc(expires_at)},
                )
                if claimed:
                    # Keep the table small: expired ids can no longer be replayed.
                    conn.execute(delete(jwt_replay).where(
                        jwt_replay.c.expires_at < datetime.now(UTC)
                    ))
                return claimed
        except SQLAlchemyError as error:
            raise StorageError(f"replay store unavailable: {type(error).__name__}") from None

    def issued_cards_by_uuid(self, card_uuids: set[str]) -> dict[str, dict]:
        """The issued cards among these uuids: who received each, through which service,
        when, with which suggestions. Feedback is checked against them (cds/feedback.py)."""
        if not card_uuids:
            return {}
        columns = (issued_cards.c.card_uuid, issued_cards.c.service_id,
                   issued_cards.c.client_iss, issued_cards.c.client_tenant,
                   issued_cards.c.issued_at, issued_cards.c.suggestions)
        query = select(*columns).where(issued_cards.c.card_uuid.in_(sorted(card_uuids)))
        try:
            with self.engine.connect() as conn:
                return {row.card_uuid: dict(row._mapping) for row in conn.execute(query)}
        except SQLAlchemyError as error:
            raise StorageError(f"issued cards unavailable: {type(error).__name__}") from None

    def shown_by_kind(self, since: datetime | None = None) -> dict[str, int]:
        """Cards issued from `since` on, counted per card kind, in SQL."""
        query = select(issued_cards.c.kind, func.count()).group_by(issued_cards.c.kind)
        if since is not None:
            query = query.where(issued_cards.c.issued_at >= _utc(since))
        with self.engine.connect() as conn:
            return {kind: int(count) for kind, count in conn.execute(query)}

    def latest_feedback_per_card(self, since: datetime | None = None) -> list[dict]:
        """For each card issued from `since` on that has feedback from the client it was
        issued to: the card (kind, suggestions, override reasons offered) and its latest
        feedback (by outcomeTimestamp, then arrival). Selected in SQL, so the report reads
        one row per answered card in the window, not the whole feedback table."""
        ranked = (
            select(
                feedback.c.card_uuid, feedback.c.outcome, feedback.c.accepted_suggestions,
                feedback.c.override_system, feedback.c.override_code,
                func.row_number().over(
                    partition_by=feedback.c.card_uuid,
                    order_by=(feedback.c.outcome_timestamp.desc(), feedback.c.id.desc()),
                ).label("rank"),
            )
            .join(issued_cards, _same_card_same_client())
        )
        if since is not None:
            ranked = ranked.where(issued_cards.c.issued_at >= _utc(since))
        latest = ranked.subquery()
        query = (
            select(latest, issued_cards.c.kind, issued_cards.c.suggestions,
                   issued_cards.c.override_reasons)
            .join(issued_cards, issued_cards.c.card_uuid == latest.c.card_uuid)
            .where(latest.c.rank == 1)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def unmatched_feedback_count(self, since: datetime | None = None) -> int:
        """Feedback (given from `since` on) that matches no card issued in the window to
        the client that sent it: cards never issued, issued earlier, or not yet recorded."""
        matched = select(issued_cards.c.card_uuid).where(_same_card_same_client())
        if since is not None:
            matched = matched.where(issued_cards.c.issued_at >= _utc(since))
        query = select(func.count()).select_from(feedback).where(~matched.exists())
        if since is not None:
            query = query.where(feedback.c.outcome_timestamp >= _utc(since))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def feedback_rows(self, since: datetime | None = None) -> list[dict]:
        query = select(feedback).order_by(feedback.c.id)
        if since is not None:
            query = query.where(feedback.c.outcome_timestamp >= _utc(since))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def issued_card_rows(self, since: datetime | None = None) -> list[dict]:
        query = select(issued_cards).order_by(issued_cards.c.issued_at)
        if since is not None:
            query = query.where(issued_cards.c.issued_at >= _utc(since))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def service_secret(self, name: str, make: Callable[[], str]) -> str:
        """The secret stored under `name`, made by `make` and stored the first time."""
        try:
            with self.engine.begin() as conn:
                self._insert_if_new(conn, service_secrets, {
                    "name": name, "value": make(), "created_at": datetime.now(UTC)})
                return conn.execute(select(service_secrets.c.value).where(
                    service_secrets.c.name == name)).scalar_one()
        except SQLAlchemyError as error:
            raise StorageError(f"service secret unavailable: {type(error).__name__}") from None

    def check_writable(self) -> bool:
        """Write, commit, and remove a row bigger than one page: on a full disk (or a
        database at its size limit) the write fails as every real write would."""
        probe_id = uuid.uuid4().hex
        try:
            with self.engine.begin() as conn:
                conn.execute(readiness_probe.insert(), {
                    "probe_id": probe_id, "payload": "x" * _PROBE_BYTES,
                    "written_at": datetime.now(UTC)})
            with self.engine.begin() as conn:
                conn.execute(delete(readiness_probe).where(
                    readiness_probe.c.probe_id == probe_id))
            return True
        except SQLAlchemyError:
            return False


def _same_card_same_client():
    return and_(
        issued_cards.c.card_uuid == feedback.c.card_uuid,
        issued_cards.c.client_iss == feedback.c.client_iss,
        issued_cards.c.client_tenant == feedback.c.client_tenant,
    )


_PROBE_BYTES = 8192  # two SQLite pages: cannot fit in free space inside an existing page


def _add_missing_columns(conn) -> None:
    """Columns added after a database was created (this service has no migration tool):
    each new column has a server default, so ALTER TABLE ADD COLUMN fills old rows."""
    from sqlalchemy import inspect

    inspector = inspect(conn)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            column_type = column.type.compile(dialect=conn.dialect)
            default = column.server_default.arg if column.server_default is not None else ""
            conn.execute(text(
                f'ALTER TABLE {table.name} ADD COLUMN {column.name} {column_type} '
                f"NOT NULL DEFAULT '{default}'"))
        for index in table.indexes:
            index.create(conn, checkfirst=True)


def _suggestion_json(suggestion: tuple[str, ...]) -> dict:
    out = {"uuid": suggestion[0], "label": suggestion[1]}
    if len(suggestion) > 2 and suggestion[2]:
        out["kind"] = suggestion[2]
    return out
