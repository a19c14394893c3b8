"""Typer options generated from :data:`fercli.tracking_options.TRACKER_OPTIONS`: the
``align`` and ``live`` commands take the same detector/tracker options, with the
same limits, as their stages check."""

from __future__ import annotations

from typing import Callable, Optional

import typer

from fercli.cli.common import input_option, number_opt
from fercli.cli.option_blocks import Block, Option, with_blocks
from fercli.tracking_options import TRACKER_OPTIONS, OptionSpec


def typer_option(spec: OptionSpec, help: Optional[str] = None):
    """The ``typer.Option`` (a range-checked one for numbers) of one spec."""
    text = help or spec.help
    if spec.kind is int:
        return number_opt(spec.default, spec.flag, help=text, min=spec.min, max=spec.max)
    if spec.reads:
        return input_option(spec.default, spec.flag, help=text)
    return typer.Option(spec.default, spec.flag, help=text)


def _option(spec: OptionSpec) -> Option:
    annotation = int if spec.kind is int else (str if spec.default is not None else Optional[str])
    return Option(spec.field, annotation, lambda: typer_option(spec))


#: The tracker options as one block: the command receives ``tracker`` (field -> value).
TRACKER_BLOCK = Block(tuple(map(_option, TRACKER_OPTIONS)), ("tracker",), lambda **values: {"tracker": values})


def with_tracker_options(command: Callable) -> Callable:
    """Give ``command`` the tracker options: it declares a ``tracker: dict`` parameter
    and receives their values in it (field -> value); the CLI shows them after the
    command's own options."""
    return with_blocks(TRACKER_BLOCK)(command)
