"""A name -> factory registry, shared by datasets, models, methods, metrics and studies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from mtlens.errors import MtlensError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names (and aliases) to factories; `create(name, **kw)` builds one, errors list the valid names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Returns a decorator that registers a factory under `name` (and its aliases)."""

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            self.add(name, factory, aliases=aliases)
            return factory

        return decorate

    def add(self, name: str, factory: Callable[..., T], *, aliases: tuple[str, ...] = ()) -> None:
        """Registers `factory` under `name`; a name used twice is a bug, not a user error."""
        for key in (name, *aliases):
            if key in self._factories or key in self._aliases:
                raise KeyError(f"{self.kind} {key!r} is registered twice")
        self._factories[name] = factory
        for alias in aliases:
            self._aliases[alias] = name

    def canonical(self, name: str) -> str:
        """Returns the registered name that `name` (or an alias of it) stands for."""
        key = name.strip().lower()
        key = self._aliases.get(key, key)
        if key not in self._factories:
            raise MtlensError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.available())}")
        return key

    def get(self, name: str) -> Callable[..., T]:
        """Returns the factory registered under `name`."""
        return self._factories[self.canonical(name)]

    def create(self, name: str, *args: object, **kwargs: object) -> T:
        """Returns a new object built by the factory registered under `name`."""
        return self.get(name)(*args, **kwargs)

    def available(self) -> list[str]:
        """Returns the registered names, sorted."""
        return sorted(self._factories)

    def __contains__(self, name: str) -> bool:
        try:
            self.canonical(name)
        except MtlensError:
            return False
        return True
