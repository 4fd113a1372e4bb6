"""The estimator base class: scikit-learn's conventions without depending on scikit-learn at runtime.

* The constructor is keyword-only and only stores its arguments; validation happens in ``fit``
  (:meth:`BaseEstimator._validate_params` against the class's ``_parameter_constraints``).
* :meth:`~BaseEstimator.get_params` / :meth:`~BaseEstimator.set_params` read and write those arguments,
  so ``sklearn.base.clone`` rebuilds an unfitted copy from the configuration.
* Fitted state lives in attributes whose names end in ``_``; :func:`check_is_fitted` looks for them.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Self

from .validation import validate_params


class NotFittedError(ValueError, AttributeError):
    """A scoring method was called before ``fit``."""


class BaseEstimator:
    """Base of every model and detector of the core (see the module docstring)."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The constructor's keyword parameter names, sorted (as scikit-learn's)."""
        init = cls.__init__
        if init is object.__init__:
            return []
        params = inspect.signature(init).parameters.values()
        names = []
        for p in params:
            if p.name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            names.append(p.name)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters as stored (``deep`` also lists nested estimators' as ``name__key``)."""
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters (``name__key`` reaches a nested estimator); returns ``self``."""
        valid = self._get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid: {', '.join(valid)}")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def _validate_params(self) -> None:
        """Check the stored parameters against ``_parameter_constraints`` (call first thing in ``fit``)."""
        validate_params(self.get_params(deep=False), self._parameter_constraints, type(self).__name__)

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.default is not inspect.Parameter.empty
        }
        changed = []
        for k, v in self.get_params(deep=False).items():
            default = defaults.get(k, inspect.Parameter.empty)
            try:
                same = bool(v is default or v == default)
            except (TypeError, ValueError):  # arrays and other values without a truth value
                same = False
            if not same:
                changed.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(changed)})"


def check_is_fitted(estimator: Any, attributes: str | list[str] | None = None) -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has the fitted ``attributes`` (default: any
    attribute whose name ends in ``_`` and does not start with ``_``)."""
    if attributes is None:
        fitted = [k for k in vars(estimator) if k.endswith("_") and not k.startswith("__")]
    else:
        names = [attributes] if isinstance(attributes, str) else list(attributes)
        fitted = [k for k in names if getattr(estimator, k, None) is not None]
        if len(fitted) < len(names):
            fitted = []
    if not fitted:
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet; call fit(...) before using it."
        )
