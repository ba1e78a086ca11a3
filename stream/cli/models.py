"""`sessionrec models`: list, show, roll back to, pin and unpin the registry's versions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import click

from sessionrec.stream.cli.options import settings_from, with_connection

if TYPE_CHECKING:
    from sessionrec.stream.redis.store import RedisStore

Move = Callable[["RedisStore"], Awaitable[tuple[str, str | None]]]  # a pointer move: (the version made current, the one it replaced)

WAIT_S = 15.0  # how long a move waits for the workers to serve the version
_wait = click.option("--wait/--no-wait", default=True, show_default=True, help=f"Wait (up to {WAIT_S:g} s) until every live worker serves it.")


@click.group(invoke_without_command=True)
@click.pass_context
def models(ctx: click.Context) -> None:
    """The model versions the registry keeps (the newest 5), and which one the workers serve.

    Without a command: the list. A rollback or pin moves the registry's
    pointer; workers swap to it within about a second, between micro-batches,
    so no click is dropped. A pin also stops the trainer from promoting over
    the version (its cycles are recorded as skipped) until `unpin`.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_versions)


@models.command("list")
@with_connection
@click.option("--json", "as_json", is_flag=True, help="Print the versions as a JSON list.")
def list_versions(as_json: bool, **overrides: object) -> None:
    """Kept versions, the most recently current first: parent, times, how each became current, held-out figures."""
    import asyncio
    import json

    from rich.console import Console

    from sessionrec.stream.watch.versions import in_registry, kept_versions, versions_table

    versions = asyncio.run(in_registry(settings_from(**overrides), kept_versions))
    if as_json:
        click.echo(json.dumps([v.to_dict() for v in versions]))
    else:
        Console().print(versions_table(versions))


@models.command()
@click.argument("version")
@with_connection
@click.option("--json", "as_json", is_flag=True, help="Print the version's metadata as JSON.")
def show(version: str, as_json: bool, **overrides: object) -> None:
    """One kept version in detail: parent, creation, items, network, training data, held-out figures."""
    import asyncio
    import json

    from sessionrec.stream.watch.versions import in_registry, kept_versions, version_lines

    versions = asyncio.run(in_registry(settings_from(**overrides), kept_versions))
    found = next((v for v in versions if v.version == version), None)
    if found is None:
        raise click.ClickException(f"model version {version} is not kept in the registry (kept: {', '.join(v.version for v in versions) or 'none'})")
    click.echo(json.dumps(found.to_dict()) if as_json else "\n".join(version_lines(found)))


@models.command()
@click.argument("version", required=False)
@with_connection
@_wait
def rollback(version: str | None, wait: bool, **overrides: object) -> None:
    """Serve an earlier kept VERSION again [default: the current version's parent].

    The trainer goes on from it: its next cycle fine-tunes this version and
    may promote a new one (pin it to prevent that). Refused while another
    version is pinned.
    """
    from sessionrec.stream.watch.versions import kept_versions, rollback_target

    async def move(store: RedisStore) -> tuple[str, str | None]:
        target = rollback_target(await kept_versions(store), version)
        return target, await store.registry.rollback(target)

    _move(move, wait, "rolled back to", **overrides)


@models.command()
@click.argument("version", required=False)
@with_connection
@_wait
def pin(version: str | None, wait: bool, **overrides: object) -> None:
    """Serve VERSION [default: the current one] and hold it: no promotion or rollback moves it until `unpin`."""

    async def move(store: RedisStore) -> tuple[str, str | None]:
        target = version or await store.registry.current()
        if target is None:
            raise LookupError("the registry has no current model yet")
        return target, await store.registry.pin(target)

    _move(move, wait, "pinned", **overrides)


@models.command()
@with_connection
def unpin(**overrides: object) -> None:
    """Release the pin: the trainer may promote again."""
    import asyncio

    from sessionrec.stream.watch.versions import in_registry

    async def release(store: RedisStore) -> str | None:
        return await store.registry.unpin()

    released = asyncio.run(in_registry(settings_from(**overrides), release))
    click.echo(f"unpinned {released}; the trainer may promote again" if released else "no version was pinned")


def _move(move: Move, wait: bool, done: str, **overrides: object) -> None:
    """Run a pointer move, say what it did, and (with ``wait``) until when the workers serve the version."""
    import asyncio

    from sessionrec.stream.redis.registry import Pinned
    from sessionrec.stream.watch.versions import in_registry, wait_served

    async def work(store: RedisStore) -> tuple[str, str | None, tuple[int, int] | None]:
        target, previous = await move(store)
        served = await wait_served(store, target, WAIT_S) if wait else None
        return target, previous, served

    try:
        target, previous, served = asyncio.run(in_registry(settings_from(**overrides), work))
    except (LookupError, Pinned) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{done} {target} (was {previous or '–'})")
    if served is not None:
        serving, live = served
        if live == 0:
            click.echo("no worker is running on this prefix: workers serve it when they start")
        elif serving == live:
            click.echo(f"{live} worker{'s' if live > 1 else ''} serve{'' if live > 1 else 's'} {target}")
        else:
            click.echo(f"after {WAIT_S:g} s, {serving} of {live} workers serve {target}; the others should follow (check `sessionrec models`)")
