"""Catalog import from CSV: read and check the whole file, then upsert it in one transaction.

- Every row is checked before anything is written, including the checks that need the database
  (stock below the units reserved by unpaid orders, currency changes): reading and the per-value
  rules are :mod:`catalog_csv` and :mod:`catalog_rules`. With problems the file is rejected as a
  whole (:class:`CatalogImportInvalid`) unless ``skip_invalid`` is set.
- The write is one transaction: all rows or none.

The service reads a path or takes CSV text (for the MCP tool), and reports progress through an
optional ``async (done, total)`` callback; ``total`` is first an estimate from the line count.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import anyio.to_thread
from sqlalchemy import Connection

from mcp_checkout.domain import Clock, Principal
from mcp_checkout.errors import CatalogImportInvalid
from mcp_checkout.service import audit, policy
from mcp_checkout.service.catalog_csv import (
    MAX_FILE_BYTES,
    MAX_LISTED_PROBLEMS,
    MAX_PROBLEMS_IN_ERROR,
    MAX_ROWS,
    ParsedCatalog,
    estimate_rows,
    parse_catalog_csv,
    read_csv_file,
    resolve_rows,
    too_large,
)
from mcp_checkout.service.catalog_rules import Resolved
from mcp_checkout.service.progress import Progress, ProgressCallback, with_progress
from mcp_checkout.service.store_profile import default_currency
from mcp_checkout.service.views import ImportReport
from mcp_checkout.store import catalog_write
from mcp_checkout.store.db import Database

__all__ = ["CatalogImportService", "ProgressCallback"]


class CatalogImportService:
    """CSV catalog import for the CLI and the ``import_catalog_csv`` tool. Rows without a currency take the
    store profile's default currency (``default_currency``, the settings', only before a profile is stored)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        default_currency: str,
        *,
        max_bytes: int = MAX_FILE_BYTES,
        max_rows: int = MAX_ROWS,
        progress_interval: float = 0.2,
    ) -> None:
        self._db = db
        self._clock = clock
        self._default_currency = default_currency
        self._max_bytes = max_bytes
        self._max_rows = max_rows
        self._progress_interval = progress_interval

    async def import_path(
        self,
        path: Path | str,
        *,
        skip_invalid: bool = False,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        by: Principal = policy.OPERATOR,
        column_map: Mapping[str, str] | None = None,
    ) -> ImportReport:
        """Import a CSV file from disk (read and parsed in a worker thread). ``column_map``: header → field."""
        file = Path(path)
        tracker = Progress()

        async def parse() -> ParsedCatalog:
            text = await anyio.to_thread.run_sync(read_csv_file, file, self._max_bytes)
            currency = await self._currency()
            return await anyio.to_thread.run_sync(
                self._parse, text, file.name or str(file), tracker, column_map, currency
            )

        return await self._run(parse, tracker, skip_invalid=skip_invalid, dry_run=dry_run, progress=progress, by=by)

    async def import_text(
        self,
        text: str,
        *,
        source: str = "CSV text",
        skip_invalid: bool = False,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        by: Principal = policy.OPERATOR,
        column_map: Mapping[str, str] | None = None,
    ) -> ImportReport:
        """Import CSV given as text (e.g. a tool argument)."""
        tracker = Progress()

        async def parse() -> ParsedCatalog:
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > self._max_bytes:
                raise too_large(source, size, self._max_bytes)
            currency = await self._currency()
            return await anyio.to_thread.run_sync(self._parse, text, source, tracker, column_map, currency)

        return await self._run(parse, tracker, skip_invalid=skip_invalid, dry_run=dry_run, progress=progress, by=by)

    # -- reading
    async def _currency(self) -> str:
        """The currency of rows without one: the store profile's (read once the file is known to be readable)."""
        return await self._db.read(lambda conn: default_currency(conn, self._default_currency), quick=True)

    def _parse(
        self, text: str, source: str, tracker: Progress, column_map: Mapping[str, str] | None, currency: str
    ) -> ParsedCatalog:
        estimate = estimate_rows(text)
        tracker.total = 2 * estimate

        def on_row(done: int) -> None:
            tracker.done = done

        return parse_catalog_csv(
            text,
            default_currency=currency,
            source=source,
            max_rows=self._max_rows,
            on_row=on_row,
            column_map=column_map,
        )

    # -- importing
    async def _run(
        self,
        parse: Callable[[], Awaitable[ParsedCatalog]],
        tracker: Progress,
        *,
        skip_invalid: bool,
        dry_run: bool,
        progress: ProgressCallback | None,
        by: Principal,
    ) -> ImportReport:
        async def work() -> ImportReport:
            parsed = await parse()
            tracker.done = parsed.rows_read
            tracker.total = parsed.rows_read + len(parsed.rows)
            return await self._apply(parsed, tracker, skip_invalid=skip_invalid, dry_run=dry_run, by=by)

        return await with_progress(work, tracker, progress, self._progress_interval)

    async def _apply(
        self, parsed: ParsedCatalog, tracker: Progress, *, skip_invalid: bool, dry_run: bool, by: Principal
    ) -> ImportReport:
        now = self._clock()
        base = parsed.rows_read

        def check(conn: Connection) -> Resolved:
            existing = catalog_write.existing_skus(conn, [row.sku for row in parsed.rows])
            return resolve_rows(parsed, existing)

        def write(conn: Connection) -> Resolved:
            existing = catalog_write.existing_skus(conn, [row.sku for row in parsed.rows], lock=True)
            resolved = resolve_rows(parsed, existing)
            if resolved.problems and not skip_invalid:
                raise self._rejection(parsed, resolved)

            def on_chunk(done: int) -> None:
                tracker.done = base + done

            catalog_write.upsert_catalog(
                conn,
                resolved.rows,
                now,
                existing=existing,
                product_fields=resolved.product_fields,
                progress=on_chunk,
            )
            change = {"created": resolved.created, "updated": resolved.updated, "skipped": len(resolved.problems)}
            audit.record(conn, by, "catalog.import", parsed.source[:200], after=change, at=now)
            return resolved

        if dry_run or not parsed.rows or (parsed.problems and not skip_invalid):
            # Nothing will be written: check against a snapshot, without taking the write lock.
            resolved = await self._db.read(check)
            if (parsed.problems or resolved.problems) and not skip_invalid:
                raise self._rejection(parsed, resolved)
        else:
            resolved = await self._db.write(write)
        problems = sorted(parsed.problems + resolved.problems, key=lambda issue: issue.line)
        return ImportReport(
            rows_read=parsed.rows_read,
            created=resolved.created,
            updated=resolved.updated,
            skipped=len(problems),
            problems=parsed.warnings + problems[:MAX_LISTED_PROBLEMS],
            dry_run=dry_run,
        )

    @staticmethod
    def _rejection(parsed: ParsedCatalog, resolved: Resolved) -> CatalogImportInvalid:
        problems = sorted(parsed.problems + resolved.problems, key=lambda issue: issue.line)
        first = problems[0]
        valid = parsed.rows_read - len(problems)
        return CatalogImportInvalid(
            f"{parsed.source} was not imported: {len(problems):,} of {parsed.rows_read:,} rows have problems "
            f"(first: line {first.line}: {first.reason}). Nothing was changed. Fix those rows and import the file "
            f"again, or import with skip_invalid (CLI: --skip-invalid) to load the {valid:,} valid rows and skip "
            "the rest.",
            details={
                "source": parsed.source,
                "rows_read": parsed.rows_read,
                "invalid_rows": len(problems),
                "valid_rows": valid,
                "problems": [issue.model_dump() for issue in problems[:MAX_PROBLEMS_IN_ERROR]],
                "warnings": [issue.model_dump() for issue in parsed.warnings],
            },
        )
