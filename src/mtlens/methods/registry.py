"""The method registry: `mtlens.methods.create_method(name, n_tasks, **options)`."""

from __future__ import annotations

from mtlens.methods.base import Method
from mtlens.registry import Registry

METHODS: Registry[Method] = Registry("method")
