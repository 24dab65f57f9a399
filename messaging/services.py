"""Delivery: claim an outbox row, do its job, record the outcome.

A row is claimed (PENDING -> SENDING) by one UPDATE before any work, so two
workers holding the same message (a retry, a relay re-enqueue, a redelivery
after a crash) cannot both send it. A claim older than the claim timeout is
presumed dead (its worker was killed) and may be taken over.

After the claim, every statement that must not be lost (loading the claimed
row, recording sent or released) is retried once the database connection
dropped under it: lost, the row would stay claimed until the claim timeout,
and if the email had gone, the relay would send it again: a duplicate
(found by the database-blip fault scenario, loadtests/faults).
"""

import functools
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar, cast

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Field, ForeignKey, Model, Value
from django.utils import timezone
from dramatiq.middleware import TimeLimitExceeded

from core.db import column, columns, ctes_write, field_of, quoted
from messaging.kinds import Copies, kind_get
from messaging.models import Notification, Outbox
from messaging.smtp import describe_error, permanent_error, send_message
from messaging.worker_metrics import delivery_observe

logger = logging.getLogger(__name__)
T = TypeVar("T")
# Seconds between tries: ~16 s in all, through a dropped connection or a
# PostgreSQL restart (fault scenario 7): recording a sent row must not be lost.
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def _through_blips(func: Callable[[], T], *, outbox_id: int) -> T:
    """Run an idempotent query; if the connection dropped, retry it on a new one."""
    for delay in RETRY_DELAYS:
        try:
            return func()
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block:
                raise
            logger.warning("outbox=%s db=retry error=%r", outbox_id, exc)
            connection.close()
            time.sleep(delay)
    return func()


@functools.cache
def _load_shape() -> tuple[ForeignKey, type[Model], list[Field], list[Field]]:
    """Outbox.user, its model (settings.AUTH_USER_MODEL: messaging imports no
    app), and the columns the claim loads of each: the outbox's, the user's."""
    user_field = cast(ForeignKey, field_of(Outbox, "user"))
    user_model = cast(type[Model], user_field.related_model)
    return (
        user_field,
        user_model,
        list(Outbox._meta.concrete_fields),
        list(user_model._meta.concrete_fields),
    )


@functools.cache
def _claim_sql(vendor: str, count: int) -> str:
    """The claim of count ids, an UPDATE without its RETURNING (kept per
    vendor and count: built from _meta once, not on every job)."""
    state, claimed_at = column(Outbox, "state"), column(Outbox, "claimed_at")
    attempts = column(Outbox, "attempts")
    marks = ", ".join(["%s"] * count)
    # Only quoted names from _meta and placeholders are interpolated. Django
    # has no UPDATE ... RETURNING; PostgreSQL and SQLite (3.35+) both do.
    return (
        f"UPDATE {connection.ops.quote_name(Outbox._meta.db_table)}"  # noqa: S608
        f" SET {state} = %s, {claimed_at} = %s, {attempts} = {attempts} + 1"
        f" WHERE {column(Outbox, 'id')} IN ({marks})"
        f" AND ({state} = %s OR ({state} = %s AND {claimed_at} < %s))"
    )


@functools.cache
def _claim_and_load_sql(vendor: str, count: int) -> str:
    """PostgreSQL: the claim in a WITH, its RETURNING joined to the users."""
    quote = connection.ops.quote_name
    user_field, user_model, outbox_fields, user_fields = _load_shape()
    outbox_table, user_table = Outbox._meta.db_table, user_model._meta.db_table
    # Only quoted names from _meta are interpolated; the values are bound.
    return (
        f"WITH {quote('claimed')} AS ({_claim_sql(vendor, count)}"  # noqa: S608
        f" RETURNING {columns(outbox_fields, outbox_table)})"
        f" SELECT {columns(outbox_fields, 'claimed')}, {columns(user_fields, user_table)}"
        f" FROM {quote('claimed')} INNER JOIN {quote(user_table)}"
        f" ON {quote(user_table)}.{quoted(user_field.target_field)}"
        f" = {quote('claimed')}.{quoted(user_field)}"
        f" ORDER BY {quote('claimed')}.{column(Outbox, 'id')}"
    )


def _claim_and_load(count: int, params: list) -> list[Outbox]:
    """Run the claim of count ids and load the claimed rows with their users.

    PostgreSQL: one statement, the UPDATE in a WITH whose RETURNING the SELECT
    joins to the users; the instances are built with from_db, the ORM's own
    converters applied, so row.user needs no query. SQLite: the claim, then
    a select_related (issue 23: one round trip and one ORM build fewer).
    """
    vendor = connection.vendor
    if not ctes_write():
        with connection.cursor() as cursor:
            cursor.execute(f"{_claim_sql(vendor, count)} RETURNING {column(Outbox, 'id')}", params)
            claimed = [pk for (pk,) in cursor.fetchall()]
        if not claimed:
            return []
        return list(Outbox.objects.select_related("user").filter(pk__in=claimed).order_by("pk"))
    with connection.cursor() as cursor:
        cursor.execute(_claim_and_load_sql(vendor, count), params)
        values = cursor.fetchall()
    if not values:
        return []
    _, user_model, outbox_fields, user_fields = _load_shape()
    compiler = Outbox.objects.none().query.get_compiler(connection=connection)
    selected = [field.get_col(Outbox._meta.db_table) for field in outbox_fields]
    selected += [field.get_col(user_model._meta.db_table) for field in user_fields]
    if converters := compiler.get_converters(selected):
        values = compiler.apply_converters(values, converters)
    split = len(outbox_fields)
    outbox_names = [field.attname for field in outbox_fields]
    user_names = [field.attname for field in user_fields]
    rows = []
    for value in values:
        row = Outbox.from_db(connection.alias, outbox_names, value[:split])
        row.user = user_model.from_db(connection.alias, user_names, value[split:])  # type: ignore[assignment]
        rows.append(row)
    return rows


def outbox_claim_rows(*, outbox_ids: list[int]) -> list[Outbox]:
    """Own the claimable rows among outbox_ids (each with its user), skip the rest.

    One UPDATE names the rows this worker now owns and (on PostgreSQL, in the
    same statement) loads them with their users; the caller runs it inside
    its transaction, with the work that needs no outside party (a code
    issued, notifications written), so a job costs one commit before its
    email and one after (issue 23; there were five).
    """
    if not outbox_ids:
        return []
    now = timezone.now()
    stale = now - timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT_SECONDS)
    ops = connection.ops
    rows = _claim_and_load(
        len(outbox_ids),
        [
            Outbox.State.SENDING,
            ops.adapt_datetimefield_value(now),
            *outbox_ids,
            Outbox.State.PENDING,
            Outbox.State.SENDING,
            ops.adapt_datetimefield_value(stale),
        ],
    )
    skipped = sorted(set(outbox_ids) - {row.pk for row in rows})
    if skipped:
        logger.info("deliver outbox=%s outcome=skipped reason=not-claimable", skipped)
    return rows


def outbox_claim(*, outbox_id: int) -> Outbox | None:
    """Own one row for sending, or None if it is done or owned by a live worker."""
    with transaction.atomic():
        rows = outbox_claim_rows(outbox_ids=[outbox_id])
    return rows[0] if rows else None


FINISH = ("state", "sent_at", "last_error")  # what finishing a row sets


def _finish(now: datetime) -> dict:
    """FINISH's values: SENT, now, no error (the sent mark and _notify's finish)."""
    return dict(zip(FINISH, (Outbox.State.SENT, now, ""), strict=True))


def outbox_mark_sent(*, row: Outbox) -> None:
    sent_at = timezone.now()
    _through_blips(
        lambda: Outbox.objects.filter(pk=row.pk).update(**_finish(sent_at)),
        outbox_id=row.pk,
    )
    delivery_observe(row.kind, row.created_at, sent_at)


def outbox_release(*, row: Outbox, error: str, final: bool) -> None:
    """Give the row back after a failure: PENDING for a retry, FAILED after the last."""
    state = Outbox.State.FAILED if final else Outbox.State.PENDING
    _through_blips(
        lambda: Outbox.objects.filter(pk=row.pk, state=Outbox.State.SENDING).update(
            state=state, last_error=error[:2000], claimed_at=None, enqueued_at=timezone.now()
        ),
        outbox_id=row.pk,
    )


def outbox_requeue(*, ids: list[int] | None = None, states=(Outbox.State.FAILED,)) -> int:
    """Put failed rows back to pending; the relay (or a caller) enqueues them."""
    rows = Outbox.objects.filter(state__in=states)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return rows.update(state=Outbox.State.PENDING, enqueued_at=None, claimed_at=None)


def describe(exc: BaseException) -> str:
    """The error a row keeps: the server's answer for a refusal, else the exception."""
    if isinstance(exc, TimeLimitExceeded):
        limit = settings.OUTBOX_TIME_LIMIT_MS
        return f"TimeLimitExceeded: the job ran past its time limit ({limit} ms)"
    return describe_error(exc)


def _failed(row: Outbox, exc: BaseException, *, final_attempt: bool) -> bool:
    """Record a failed attempt on the row (PENDING for a retry, FAILED after the
    last or on a permanent refusal, SMTP 5xx); True when it is to be retried.

    BaseException, not Exception: Dramatiq's TimeLimitExceeded (and its
    Shutdown) derive from BaseException, and a job killed by one must not
    leave its row SENDING with no error (issue 10).
    """
    permanent = permanent_error(exc)
    final = final_attempt or permanent
    outbox_release(row=row, error=describe(exc), final=final)
    logger.warning(
        "deliver outbox=%s kind=%s attempt=%s outcome=%s error=%r",
        row.pk,
        row.kind,
        row.attempts,
        "failed" if final else "retry",
        describe(exc),
    )
    return not permanent


def _sent(row: Outbox) -> None:
    logger.info("deliver outbox=%s kind=%s attempt=%s outcome=sent", row.pk, row.kind, row.attempts)


def _notice_select(
    notice: Notification | Copies, fields: list[Field], *, key: str, now: datetime
) -> tuple[str, list]:
    """The SELECT of one notice's rows (fields' columns), and its parameters.

    A Notification: one row of bound values. Copies: the audience's query,
    built by the ORM, selecting each user's id beside the notice's values.
    key is the dedupe_key of a notice that has none.
    """
    if isinstance(notice, Notification):
        notice.dedupe_key = notice.dedupe_key or key
        notice.created_at = now
        values = [
            field.get_db_prep_save(getattr(notice, field.attname), connection) for field in fields
        ]
        return "SELECT " + ", ".join(["%s"] * len(values)), values
    each = Notification(
        kind=notice.kind,
        title=notice.title,
        body=notice.body,
        dedupe_key=notice.dedupe_key or key,
        created_at=now,
    )
    user = Notification._meta.get_field("user")
    selected = [
        "pk" if field is user else Value(getattr(each, field.attname), output_field=field)
        for field in fields
    ]
    query = notice.audience.order_by().values_list(*selected).query
    return query.get_compiler(connection=connection).as_sql()


@functools.cache
def _notify_sql(vendor: str) -> tuple[list[Field], str, str]:
    """The notification fields an INSERT writes (every NOT NULL column; the
    nullable one, read_at, starts NULL: unread), the INSERT's head, and the
    row's finish as a WITH (kept per vendor: built from _meta once)."""
    quote = connection.ops.quote_name
    fields = [f for f in Notification._meta.concrete_fields if not f.primary_key and not f.null]
    assignments = ", ".join(f"{column(Outbox, name)} = %s" for name in FINISH)
    # Only quoted names from _meta are interpolated.
    head = (
        f"INSERT INTO {quote(Notification._meta.db_table)}"
        f" ({', '.join(quoted(field) for field in fields)})"
    )
    finished = (
        f"WITH {quote('finished')} AS (UPDATE {quote(Outbox._meta.db_table)}"  # noqa: S608
        f" SET {assignments} WHERE {column(Outbox, 'id')} = %s) "
    )
    return fields, head, finished


def _notify(row: Outbox) -> None:
    """Write the row's notifications and finish the row, in the caller's transaction.

    One INSERT ... SELECT writes every notice: the named users' rows and each
    Copies' audience (read by the SELECT, not by Python), idempotent by (user,
    dedupe_key), the key defaulting to the row; on PostgreSQL the row's finish
    (UPDATE ... SET state = 'sent') rides in the same statement, as a WITH
    (issue 23: each statement is a round trip and an ORM build). A retry
    finds the row SENT or nothing written.
    """
    notices = kind_get(row.kind).handler(row.user, row.context)
    now = timezone.now()
    finish = _finish(now)
    if not notices:
        Outbox.objects.filter(pk=row.pk).update(**finish)
        return
    fields, head, finished = _notify_sql(connection.vendor)
    selects, params = [], []
    for notice in notices:
        sql, values = _notice_select(notice, fields, key=f"outbox:{row.pk}", now=now)
        selects.append(sql)
        params.extend(values)
    # Only the cached head and the ORM's own SQL are interpolated.
    # "WHERE true": SQLite reads an ON after a bare SELECT as a join's.
    insert = (
        f"{head} SELECT * FROM ({' UNION ALL '.join(selects)}) AS notices"  # noqa: S608
        " WHERE true ON CONFLICT DO NOTHING"
    )
    if not ctes_write():
        with connection.cursor() as cursor:
            cursor.execute(insert, params)
        Outbox.objects.filter(pk=row.pk).update(**finish)
        return
    finish_params = [
        field_of(Outbox, name).get_db_prep_save(value, connection) for name, value in finish.items()
    ]
    with connection.cursor() as cursor:
        cursor.execute(finished + insert, [*finish_params, row.pk, *params])


def outbox_deliver(*, outbox_ids: list[int], final_attempt: bool = False) -> None:
    """Deliver the rows one message carries: a signup's verification email and
    its announcement travel together (issue 23: one job per signup, not two).

    In one transaction: claim the rows, write each notification row's
    notifications and finish it, build each email (issuing its code). Each
    row's work runs in a savepoint, so one row's failure is recorded on that
    row alone. After the commit, the emails are sent one by one, each marked
    sent on its own. If any row failed in a way worth retrying, the first
    such error is raised once all are done, and the retry's claim takes only
    the rows still pending: what succeeded is never repeated.
    """
    retry: BaseException | None = None
    emails: list[tuple[Outbox, EmailMessage | None]] = []
    with transaction.atomic():
        for row in outbox_claim_rows(outbox_ids=outbox_ids):
            kind = kind_get(row.kind)
            try:
                with transaction.atomic():
                    if kind.channel == "notifications":
                        _notify(row)
                        _sent(row)
                    else:
                        emails.append((row, kind.handler(row.user, row.context)))
            except BaseException as exc:
                if _failed(row, exc, final_attempt=final_attempt):
                    retry = retry or exc
    for row, message in emails:
        try:
            if message is not None:
                send_message(message)
        except BaseException as exc:
            if _failed(row, exc, final_attempt=final_attempt):
                retry = retry or exc
            continue
        outbox_mark_sent(row=row)
        _sent(row)
    if retry is not None:
        raise retry


def email_deliver(*, outbox_id: int, final_attempt: bool = False) -> None:
    """Deliver one email row (outbox_deliver with a single id)."""
    outbox_deliver(outbox_ids=[outbox_id], final_attempt=final_attempt)


def notifications_deliver(*, outbox_id: int, final_attempt: bool = False) -> None:
    """Deliver one notifications row (outbox_deliver with a single id)."""
    outbox_deliver(outbox_ids=[outbox_id], final_attempt=final_attempt)
