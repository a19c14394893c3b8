"""Blocks of typer options declared once and given to several commands.

A :class:`Block` is a run of options (each a parameter name, its annotation and
a factory of its ``typer.Option``: typer needs a fresh object per command) and
how their values reach the command: ``build(**values)`` returns the keywords
the command receives instead (a ``FrameOptions`` instead of five flags, say).
:func:`with_blocks` gives a command its blocks' options, after its own, in the
order the blocks are listed, so that every command taking a block shows the same
flags, defaults and help.
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Option:
    name: str                      # the parameter typer fills
    annotation: Any
    make: Callable[[], Any]        # a fresh typer.Option


@dataclass(frozen=True)
class Block:
    options: tuple[Option, ...]
    gives: tuple[str, ...]          # the keywords ``build`` returns (parameters of the command)
    build: Callable[..., dict]      # the options' values -> the command's keywords


def with_blocks(*blocks: Block) -> Callable[[Callable], Callable]:
    """Decorate a command that declares the ``gives`` parameters of ``blocks``: typer
    sees the blocks' options instead, and the command receives what they build."""
    options = [option for block in blocks for option in block.options]
    given = {name for block in blocks for name in block.gives}

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command)
        own = [p for name, p in signature.parameters.items() if name not in given]

        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            for block in blocks:
                kwargs.update(block.build(**{o.name: kwargs.pop(o.name) for o in block.options}))
            return command(*args, **kwargs)

        generated = [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.make(), annotation=o.annotation)
                     for o in options]
        positional = [p for p in own if p.kind != inspect.Parameter.KEYWORD_ONLY]
        keyword = [p for p in own if p.kind == inspect.Parameter.KEYWORD_ONLY]
        wrapper.__signature__ = signature.replace(parameters=[*positional, *keyword, *generated])
        # typer resolves annotations through typing.get_type_hints: the generated ones too.
        wrapper.__annotations__ = {**{k: v for k, v in typing.get_type_hints(command).items() if k not in given},
                                   **{o.name: o.annotation for o in options}}
        del wrapper.__wrapped__  # typer must read the generated signature, not the original
        return wrapper

    return decorate
