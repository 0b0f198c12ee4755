"""The figures of the toolkit, each regenerated and checked by one command.

Every figure is a module of this package that registers itself (the contract is in
:mod:`rivervalley.figures.registry`); :data:`rivervalley.figures.registry.GALLERY` lists them in
gallery order and :func:`rivervalley.figures.runner.build` regenerates them
(``rivervalley figures``).

Importing this package imports the gallery's modules in that order, before any one of them can be
imported alone (Python runs a package's ``__init__`` first), so ``registry.FIGURES`` is always
complete and in gallery order.
"""

from rivervalley.figures import registry as _registry

_registry.load()
