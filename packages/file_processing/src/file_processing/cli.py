"""``etl-file-processing``: inbound vendor files — unpack, decrypt, check, quarantine."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.filesize import decimal as human_size
from rich.table import Table

from etl_core.errors import ConfigError
from etl_core.runtime import ExitCode, RuntimeSettings, Session, open_session, run_entry_point
from etl_core.secrets import Secret
from file_processing import __version__
from file_processing.decrypt import Decryptor
from file_processing.delivery import Encryption, open_delivery
from file_processing.errors import RefusedError
from file_processing.reasons import Reason, describe
from file_processing.sniff import SNIFF_SIZE, sniff
from file_processing.unpack import Packing

out = Console()
err = Console(stderr=True)

app = typer.Typer(
    name="etl-file-processing",
    help="Inbound vendor files: unpack, decrypt, data-quality analysis, quarantine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if value:
        out.print(f"etl-file-processing {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    storage: Annotated[
        str | None, typer.Option("--storage", help="Store URL (s3://bucket/prefix or file:///dir).")
    ] = None,
    config_dir: Annotated[
        Path | None, typer.Option("--config-dir", help="Dataset contracts and etl.toml.")
    ] = None,
    log_level: Annotated[str | None, typer.Option("--log-level")] = None,
    log_format: Annotated[
        str | None, typer.Option("--log-format", help="auto, json or console.")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Options shared by every subcommand (flag > ETL_* environment > etl.toml > default)."""
    flags = {
        "storage_url": storage,
        "config_dir": config_dir,
        "log_level": log_level,
        "log_format": log_format,
    }
    try:
        ctx.obj = open_session("file_processing", RuntimeSettings, flags)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}", highlight=False)
        raise typer.Exit(ExitCode.USAGE) from None


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print every setting with its value (secrets redacted) and where it came from."""
    session: Session[RuntimeSettings] = ctx.obj
    table = Table("setting")
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold")
    for row in session.settings_rows():
        table.add_row(*row)
    out.print(table)


@app.command()
def reasons(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The reason codes a refused or quarantined file can carry."""
    if as_json:
        out.print_json(json.dumps({code.value: describe(code) for code in Reason}))
        return
    table = Table("reason code", "meaning")
    for code in Reason:
        table.add_row(code.value, describe(code))
    out.print(table)


KeyRef = Annotated[
    str | None,
    typer.Option("--key", help="Secret key reference (env:NAME or file:/path), ASCII-armoured."),
]
PassphraseRef = Annotated[
    str | None, typer.Option("--passphrase", help="Passphrase reference (env:NAME or file:/path).")
]


@app.command()
def inspect(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A delivered file.")],
    packing: Annotated[Packing, typer.Option(help="What the contract declares.")] = Packing.AUTO,
    encryption: Annotated[
        Encryption, typer.Option(help="What the contract declares.")
    ] = Encryption.AUTO,
    key: KeyRef = None,
    passphrase: PassphraseRef = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Open a delivery locally as processing would: its members, or why it would be refused.

    Nothing is written anywhere; exit code 3 when the file would be refused.
    """
    with contextlib.ExitStack() as stack:
        decryptor = None
        if key is not None:
            secret = Secret(key).reveal().encode()
            phrase = Secret(passphrase).reveal() if passphrase else None
            decryptor = stack.enter_context(Decryptor(secret, passphrase=phrase))
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="inspect-"))
        try:
            members = [
                {"member": m.path, "bytes": m.size, "content": _content_kind(m.file)}
                for m in open_delivery(
                    path,
                    name=path.name,
                    packing=packing,
                    encryption=encryption,
                    decryptor=decryptor,
                    workdir=scratch,
                )
            ]
        except RefusedError as exc:
            _report_refusal(path, exc, as_json)
            raise typer.Exit(ExitCode.PARTIAL) from None
    if as_json:
        out.print_json(json.dumps({"file": str(path), "status": "ok", "members": members}))
        return
    table = Table("member", "size", "content", title=str(path))
    for m in members:
        table.add_row(str(m["member"]), human_size(int(str(m["bytes"]))), str(m["content"]))
    out.print(table)


def _content_kind(file: Path) -> str:
    with file.open("rb") as stream:
        return sniff(stream.read(SNIFF_SIZE)).value


def _report_refusal(path: Path, exc: RefusedError, as_json: bool) -> None:
    if as_json:
        refusal = {"code": str(exc.reason), "message": exc.message, "member": exc.member}
        out.print_json(json.dumps({"file": str(path), "status": "refused", "reason": refusal}))
        return
    out.print(f"[red]refused[/red] {path}: [bold]{exc.reason}[/bold] {exc.message}")


def main() -> None:
    """Console-script entry point."""
    run_entry_point(app, name="etl-file-processing")
