"""The typer application every command module registers on."""

import typer

from fercli.cli.paths import guarded


class GuardedTyper(typer.Typer):
    """A ``typer.Typer`` whose every command runs :func:`fercli.cli.paths.guard` first:
    no command can write a file that has not passed the one output check."""

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)

        def decorator(func):
            register(guarded(func))
            return func

        return decorator


app = GuardedTyper(
    name="fercli",
    help="Composable stages for facial-expression-recognition research (HDF5 in, HDF5 out; '-' pipes).",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from fercli import __version__

        typer.echo(f"fercli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error (anywhere on the line; or FERCLI_DEBUG=1)."),
) -> None:
    """fercli: each stage reads and writes HDF5 artifacts; '-' is stdin/stdout. Add --debug anywhere for tracebacks."""
