"""`schemagen review DATASET_DIR`: a local web page to read, fix and approve a dataset's pairs."""

from __future__ import annotations

import os
import sys

import click

from ..errors import SchemagenError


def _has_display() -> bool:
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@click.command("review", context_settings={"show_default": True})
@click.argument("dataset_dir", type=click.Path(path_type=str))
@click.option("--host", default="127.0.0.1", help="Interface to listen on (loopback unless --allow-remote).")
@click.option("--port", default=8765, type=click.IntRange(0, 65535), help="TCP port (0: any free one).")
@click.option("--allow-remote", is_flag=True,
              help="Allow a --host that is not loopback: anyone who reaches it can read and change decisions.")
@click.option("--reviewer", default=None, help="Name recorded with each decision  [default: the login name]")
@click.option("--open/--no-open", "open_browser", default=None,
              help="Open the page in a browser  [default: when a display is present]")
@click.option("--max-body-bytes", default=256 * 1024, type=click.IntRange(1024), help="Larger bodies get 413.")
def command(dataset_dir: str, host: str, port: int, allow_remote: bool, reviewer: str | None,
            open_browser: bool | None, max_body_bytes: int) -> None:
    """Review a generated dataset in the browser: approve, reject (with a reason) or edit each pair.

    Decisions are appended to DATASET_DIR/decisions.jsonl (who and when, fsynced); the generated files
    are never rewritten. `schemagen train` then leaves rejected pairs out and trains edited pairs on
    their edit; `schemagen check-data` checks the decisions too.
    """
    from ..review.app import bind, is_loopback, serve
    from ..review.session import ReviewSession

    loopback = is_loopback(host.strip("[]").lower())
    if not loopback and not allow_remote:
        raise SchemagenError(f"--host {host} is not a loopback address: pass --allow-remote to listen on it "
                             "(anyone who can reach it can read and change the decisions)")
    session = ReviewSession(dataset_dir, reviewer=reviewer)
    sock = bind(host.strip("[]"), port)
    if not loopback:
        click.echo(f"schemagen: warning: listening on {host}, not loopback: anyone who can reach this machine "
                   "can read the dataset and change its decisions", err=True)
    c = session.counts()
    click.echo(f"schemagen: reviewing {dataset_dir}: {len(session.pairs)} pairs ({c['approved']} approved, "
               f"{c['edited']} edited, {c['rejected']} rejected, {c['unreviewed']} unreviewed); "
               f"decisions in {session.log.path}", err=True)
    shown = host if ":" not in host or host.startswith("[") else f"[{host}]"
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    click.echo(f"schemagen: review page on {url} (Ctrl+C to stop; every decision is already saved)", err=True)
    if open_browser or (open_browser is None and _has_display()):
        import webbrowser

        webbrowser.open(url)
    serve(session, sock, max_body_bytes=max_body_bytes, loopback_only=loopback)
