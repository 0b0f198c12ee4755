"""The one pytree idiom of the package: frozen dataclasses whose unflattening skips validation.

Every schedule, noise model, landscape and model of rivervalley is a frozen dataclass registered
with JAX by :func:`pytree`. Array fields are the pytree's leaves (traced inside ``jit`` / ``vmap``,
batched by ``vmap``, sharded by the engine); fields named in ``static`` are its metadata (sizes,
names, flags: hashable, part of the compiled program's identity).

Construction and unflattening are different paths, as in equinox (``__check_init__`` runs at
construction, never when JAX rebuilds a pytree):

- **constructing** an object validates it. A class whose fields are what the user writes
  (``bigram.TableModel(data, batch_size=8)``) keeps its dataclass ``__init__`` and checks itself in
  ``__post_init__``. A class whose leaves are *derived* from the arguments (a WSD schedule stores
  its decay length, a landscape its broadcast sharpness) is built by exactly one public factory
  (``factory=``); calling the class itself raises ``TypeError`` naming the factory, so there is no
  second, unchecked way to make one. Factories create the instance with :func:`build`.
- **unflattening** (what JAX does after ``vmap``, ``jit``, ``tree.map``, with tracers or with the
  placeholder objects of ``in_axes`` specs as leaves) never runs ``__init__`` / ``__post_init__``:
  the fields are set directly, so a batch of schedules or a traced landscape is never "checked"
  with values that are not numbers.

>>> import dataclasses, jax, jax.numpy as jnp
>>> @pytree(static=("name",), factory="make_point")
... @dataclasses.dataclass(frozen=True)
... class Point:
...     x: jax.Array
...     name: str = "p"
>>> def make_point(x):
...     return build(Point, x=jnp.asarray(x), name="p")
>>> p = jax.vmap(lambda x: make_point(x))(jnp.arange(3.0))
>>> print(p.x.tolist(), p.name)
[0.0, 1.0, 2.0] p
>>> Point(1.0)
Traceback (most recent call last):
...
TypeError: Point is built by make_point(...), which checks its arguments; Point is a type only
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

import jax

__all__ = ["pytree", "build"]

T = TypeVar("T")


def _set_fields(obj: Any, names: Sequence[str], values: Sequence[Any]) -> None:
    for name, value in zip(names, values):
        object.__setattr__(obj, name, value)


def build(cls: type[T], **fields: Any) -> T:
    """An instance of ``cls`` with exactly these field values, without ``__init__``.

    For factories (which have validated and derived the values) and for unflattening."""
    names = [f.name for f in dataclasses.fields(cls)]
    missing = [n for n in names if n not in fields]
    unknown = [n for n in fields if n not in names]
    if missing or unknown:  # a programming error of the factory, not a user error
        raise TypeError(f"build({cls.__name__}): missing fields {missing}, unknown {unknown}")
    obj = object.__new__(cls)
    _set_fields(obj, names, [fields[n] for n in names])
    return obj


def pytree(cls: type | None = None, *, static: Sequence[str] = (), factory: str | None = None):
    """Register a frozen dataclass as a pytree (decorator; see the module doc).

    Args:
        cls: the class (already a ``dataclasses.dataclass(frozen=True)``; made one if not).
        static: names of the fields that are metadata, not leaves.
        factory: the public function that builds instances (``"rivervalley.schedules.wsd"``);
            calling the class itself then raises ``TypeError`` pointing to it.
    """
    def register(cls: type) -> type:
        if not dataclasses.is_dataclass(cls):
            cls = dataclasses.dataclass(frozen=True)(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [n for n in static if n not in names]
        if unknown:
            raise TypeError(f"pytree({cls.__name__}): static fields {unknown} are not fields")
        data = tuple(n for n in names if n not in static)
        meta = tuple(n for n in names if n in static)
        keys = tuple(jax.tree_util.GetAttrKey(n) for n in data)

        def flatten_with_keys(obj):
            return ([(k, getattr(obj, n)) for k, n in zip(keys, data)],
                    tuple(getattr(obj, n) for n in meta))

        def flatten(obj):
            return [getattr(obj, n) for n in data], tuple(getattr(obj, n) for n in meta)

        def unflatten(aux, leaves):
            obj = object.__new__(cls)
            _set_fields(obj, data, list(leaves))
            _set_fields(obj, meta, aux)
            return obj

        jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
        if factory is not None:
            def refuse(self, *args, **kwargs):
                raise TypeError(f"{cls.__name__} is built by {factory}(...), which checks its "
                                f"arguments; {cls.__name__} is a type only")

            cls.__init__ = refuse
            cls.__factory__ = factory
        return cls

    return register if cls is None else register(cls)
