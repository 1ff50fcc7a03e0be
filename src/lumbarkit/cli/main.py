"""The ``lumbarkit`` command line. Commands live one group per module and import heavy
libraries (torch, onnxruntime, matplotlib) inside the command, so ``--help`` and ``info`` start fast."""

from __future__ import annotations

import logging
import sys

import typer

from lumbarkit.errors import LumbarkitError
from lumbarkit.version import __version__

app = typer.Typer(
    name="lumbarkit",
    help="Automated lumbar spine MRI analysis: segmentation, level naming, disc grading, measurements.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
train_app = typer.Typer(help="Train a stage's model on your data (needs the train extra: pip install 'lumbarkit\\[train]').", no_args_is_help=True)
evaluate_app = typer.Typer(help="Evaluate a stage's model on labelled data.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(evaluate_app, name="evaluate")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lumbarkit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details to stderr."),
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _register() -> None:
    # Each module adds its commands to app / train_app / evaluate_app.
    from lumbarkit.cli import commands  # noqa: F401


def run() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    _register()
    try:
        app(standalone_mode=False)
    except LumbarkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # usage errors and anything unexpected: one line, no traceback
        sys.exit(_report(exc))


def _report(exc: Exception) -> int:
    """Print one line for an exception that escaped a command; returns the exit code.

    Usage errors are recognised by what they are, not by their class: typer >= 0.29 raises its own vendored
    click's exceptions, which are not ``click.ClickException``."""
    names = {c.__name__ for c in type(exc).__mro__}
    code = getattr(exc, "exit_code", None)
    if "Exit" in names and isinstance(code, int):  # --version, --help
        return code
    if "NoArgsIsHelpError" in names:  # the help was printed: nothing is wrong
        return 2
    if "Abort" in names:
        print("error: aborted", file=sys.stderr)
        return 1
    if hasattr(exc, "format_message") and isinstance(code, int):  # a usage error (missing option, unknown command)
        print(f"error: {' '.join(str(exc.format_message()).split())}", file=sys.stderr)
        return 2
    logging.getLogger("lumbarkit").debug("unexpected error", exc_info=True)
    first = str(exc).splitlines()[0] if str(exc) else ""
    print(f"error: unexpected {type(exc).__name__}: {first} (rerun with -v for details)", file=sys.stderr)
    return 1
