"""Typer options generated from :data:`fercli.tracking_options.TRACKER_OPTIONS`: the
``align`` and ``live`` commands take the same detector/tracker options, with the
same limits, as their stages check."""

from __future__ import annotations

import functools
import inspect
import typing
from typing import Callable, Optional

import typer

from fercli.cli.common import input_option, number_opt
from fercli.tracking_options import TRACKER_OPTIONS, OptionSpec


def typer_option(spec: OptionSpec, help: Optional[str] = None):
    """The ``typer.Option`` (a range-checked one for numbers) of one spec."""
    text = help or spec.help
    if spec.kind is int:
        return number_opt(spec.default, spec.flag, help=text, min=spec.min, max=spec.max)
    if spec.reads:
        return input_option(spec.default, spec.flag, help=text)
    return typer.Option(spec.default, spec.flag, help=text)


def _parameter(spec: OptionSpec) -> inspect.Parameter:
    annotation = int if spec.kind is int else (str if spec.default is not None else Optional[str])
    return inspect.Parameter(spec.field, inspect.Parameter.KEYWORD_ONLY, default=typer_option(spec), annotation=annotation)


def with_tracker_options(command: Callable) -> Callable:
    """Give ``command`` the tracker options: it declares a ``tracker: dict`` parameter
    and receives their values in it (field -> value); the CLI shows them after the
    command's own options."""
    signature = inspect.signature(command)
    own = [p for name, p in signature.parameters.items() if name != "tracker"]
    fields = [spec.field for spec in TRACKER_OPTIONS]

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        tracker = {name: kwargs.pop(name) for name in fields}
        return command(*args, tracker=tracker, **kwargs)

    positional = [p for p in own if p.kind != inspect.Parameter.KEYWORD_ONLY]
    keyword = [p for p in own if p.kind == inspect.Parameter.KEYWORD_ONLY]
    wrapper.__signature__ = signature.replace(parameters=[*positional, *keyword, *map(_parameter, TRACKER_OPTIONS)])
    # typer resolves annotations through typing.get_type_hints: the generated ones too.
    wrapper.__annotations__ = {**{k: v for k, v in typing.get_type_hints(command).items() if k != "tracker"},
                               **{spec.field: _parameter(spec).annotation for spec in TRACKER_OPTIONS}}
    del wrapper.__wrapped__  # typer must read the generated signature, not the original
    return wrapper
