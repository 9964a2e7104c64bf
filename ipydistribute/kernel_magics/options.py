"""The magics' arguments, made from the one table of options (core/options.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from IPython.core.magic_arguments import argument

from ..core.options import OPTIONS, Option

F = TypeVar("F", bound=Callable[..., Any])


def _argument(option: Option) -> Callable[[F], F]:
    """The argparse spelling of one option; values are parsed and checked after argparse, by the table."""
    text = option.help.replace("%", "%%")  # argparse formats help with %
    if option.metavar is None:
        made = argument(option.flag, action="store_true", dest=option.keyword, help=text)
    elif option.const is not None:
        made = argument(option.flag, metavar=option.metavar, nargs="?", const=option.const, default=None,
                        dest=option.keyword, help=text)
    else:
        made = argument(option.flag, metavar=option.metavar, default=None, dest=option.keyword, help=text)
    return made  # type: ignore[no-any-return]


def _group(group: str) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        for option in reversed([o for o in OPTIONS if o.group == group]):
            func = _argument(option)(func)
        return func
    return decorate


#: How the items run: batching, resources, retries, errors.
run_options = _group("run")
#: Where the value goes and how much is shown.
output_options = _group("output")
