"""``ltxserve keys top-up | show | history``: a key's credits and ledger (docs/credits.md).

Kept apart from cli.py, which registers these commands on its ``keys`` group with
``add_credit_commands`` (the group and its store opener are handed over:
``python -m ltxserve.cli`` runs cli.py as ``__main__``, so this module cannot
import them back).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ltxserve.cli_flags import Command

if TYPE_CHECKING:
    from ltxserve.jobs.store.base import Credits, JobStore, LedgerEntry

DataDir = Annotated[  # as cli.py's
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (SQLite file, blobs unless LTXSERVE_STORAGE_URL, secret). "
        "Default: $LTXSERVE_DATA_DIR or ~/.local/share/ltxserve.",
        show_default=False,
    ),
]
KeyRef = Annotated[
    str,
    typer.Argument(
        metavar="ID_OR_PREFIX",
        help="Any unambiguous start (4+ characters) of an id or prefix as `keys list` shows "
        "it, or the whole key (never printed back).",
    ),
]
SIGN = {"top_up": "", "hold": "-", "charge": "", "release": "+"}


def _credits_line(key: dict[str, Any], c: Credits) -> str:
    return (
        f"key {key['id']} ({key['prefix']}...): balance {c.balance} credits, "
        f"held {c.held} by unfinished jobs"
    )


def _entry_line(e: LedgerEntry) -> str:
    from ltxserve.api.status import iso_ms

    amount = f"{e.amount:+d}" if e.kind == "top_up" else f"{SIGN[e.kind]}{e.amount}"
    return "\t".join(
        [
            str(e.id),
            iso_ms(e.created_at),
            e.kind,
            amount,
            f"balance={e.balance}",
            f"job={e.job_id or '-'}",
            e.note or "",
        ]
    ).rstrip()


def add_credit_commands(
    keys_app: typer.Typer, open_store: Callable[[Path | None, str], JobStore]
) -> None:
    """Register top-up, show and history on the ``keys`` group."""

    def _key(store: JobStore, ref: str) -> dict[str, Any]:
        from ltxserve.keys import KeyMatchError, find_key

        try:
            return find_key(store, ref)
        except KeyMatchError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    @keys_app.command("top-up", cls=Command)
    def keys_top_up(
        key_ref: KeyRef,
        amount: Annotated[
            int,
            typer.Argument(
                help="Credits to add; negative takes credits back (write `-- -50`), never below 0."
            ),
        ],
        data_dir: DataDir = None,
        note: Annotated[str | None, typer.Option(help="Kept in the ledger entry.")] = None,
    ) -> None:
        """Add credits to a key's balance (docs/credits.md); prints the new balance."""
        store = open_store(data_dir, "keys top-up")
        key = _key(store, key_ref)
        try:
            now = store.top_up_credits(str(key["id"]), amount, note)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(_credits_line(key, now))

    @keys_app.command("show", cls=Command)
    def keys_show(key_ref: KeyRef, data_dir: DataDir = None) -> None:
        """A key's credits: its balance (what it may still spend) and what its unfinished
        jobs hold."""
        store = open_store(data_dir, "keys show")
        key = _key(store, key_ref)
        typer.echo(_credits_line(key, store.credits(str(key["id"]))))

    @keys_app.command("history", cls=Command)
    def keys_history(
        key_ref: KeyRef,
        data_dir: DataDir = None,
        limit: Annotated[int, typer.Option(min=1, help="Entries to show.")] = 50,
        before: Annotated[
            int | None, typer.Option(help="Only entries older than this id (paging).")
        ] = None,
    ) -> None:
        """A key's credit ledger, newest first: id, time, kind (top_up, hold, charge,
        release), amount, balance after, job, note."""
        store = open_store(data_dir, "keys history")
        key = _key(store, key_ref)
        for entry in store.credit_history(str(key["id"]), limit, before):
            typer.echo(_entry_line(entry))
