"""The one walker over parameter trees: nested lists/tuples of arrays, with ``None`` (a network
without biases) and plain numbers (an optimizer's step count) left where they are.

A network's parameters are ``[(W, b | None), ...]``; an optimizer's state is such a tree, a tuple of
them, or ``None``. Every module that walks one uses these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def is_leaf(x: Any) -> bool:
    """An array: anything that is not a list, tuple, ``None`` or a plain number."""
    return not (x is None or isinstance(x, (list, tuple, int, float, str, bool)))


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """``fn`` applied leaf by leaf over ``tree`` (and trees of the same structure in ``rest``),
    keeping the structure; ``None`` and plain numbers of ``tree`` come back as they are."""
    if isinstance(tree, (list, tuple)):
        parts = zip(tree, *rest, strict=True) if rest else ((item,) for item in tree)
        return type(tree)(tree_map(fn, *items) for items in parts)
    if not is_leaf(tree):
        return tree
    return fn(tree, *rest)


def leaves(tree: Any) -> Iterator[Any]:
    """The arrays of ``tree``, depth first."""
    if isinstance(tree, (list, tuple)):
        for item in tree:
            yield from leaves(item)
    elif is_leaf(tree):
        yield tree


def rebuild(tree: Any, values: Iterator[Any]) -> Any:
    """``tree`` with its arrays replaced, in ``leaves`` order, by the next items of ``values``."""
    if isinstance(tree, (list, tuple)):
        return type(tree)(rebuild(item, values) for item in tree)
    return next(values) if is_leaf(tree) else tree
