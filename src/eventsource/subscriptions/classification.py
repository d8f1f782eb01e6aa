"""How an error is classified: category, severity, whether a retry can help."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "ErrorCategory",
    "ErrorClassification",
    "ErrorClassifier",
    "ErrorSeverity",
    "get_default_classifier",
]


class ErrorCategory(Enum):
    """What kind of failure an error is, as the error classifier sees it."""

    TRANSIENT = "transient"
    PERMANENT = "permanent"
    INFRASTRUCTURE = "infrastructure"
    APPLICATION = "application"
    UNKNOWN = "unknown"


class ErrorSeverity(Enum):
    """How serious a failure is, from LOW to CRITICAL."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


_SEVERITY_RANK = {s: rank for rank, s in enumerate(ErrorSeverity)}


@dataclass(frozen=True)
class ErrorClassification:
    category: ErrorCategory
    severity: ErrorSeverity
    retryable: bool
    description: str = ""


_UNKNOWN = ErrorClassification(ErrorCategory.UNKNOWN, ErrorSeverity.MEDIUM, False, "Unknown error")


class ErrorClassifier:
    """Maps exceptions to classifications. A new classifier knows the default rules
    (`ConnectionError`, timeouts and `OSError` transient and retryable; `ValueError`, `KeyError`,
    `TypeError`, `AttributeError` application errors; `MemoryError`, `SystemError` critical).

    Precedence: a rule registered for the error's exact class, then the first message pattern
    that matches, then the nearest class in the error's MRO that has a rule, else UNKNOWN."""

    def __init__(self) -> None:
        self._rules: dict[type[BaseException], ErrorClassification] = dict(_DEFAULT_RULES)
        self._custom: set[type[BaseException]] = set()
        self._patterns: list[tuple[str, ErrorClassification]] = []
        self._cache: dict[type[BaseException], ErrorClassification] = {}

    def register_classification(
        self, exception_type: type[BaseException], classification: ErrorClassification
    ) -> None:
        """Classify `exception_type` (and subclasses without a nearer rule) as `classification`."""
        self._rules[exception_type] = classification
        self._custom.add(exception_type)
        self._cache.clear()

    register = register_classification

    def register_pattern_rule(self, pattern: str, classification: ErrorClassification) -> None:
        """Classify errors whose message contains `pattern` (any case) as `classification`."""
        self._patterns.append((pattern.lower(), classification))

    def classify(self, error: BaseException) -> ErrorClassification:
        kind = type(error)
        if kind in self._custom:
            return self._rules[kind]
        if self._patterns:
            message = str(error).lower()
            for pattern, classification in self._patterns:
                if pattern in message:
                    return classification
        found = self._cache.get(kind)
        if found is None:
            found = next((self._rules[k] for k in kind.__mro__ if k in self._rules), _UNKNOWN)
            self._cache[kind] = found
        return found

    def is_retryable(self, error: BaseException) -> bool:
        return self.classify(error).retryable

    def is_transient(self, error: BaseException) -> bool:
        return self.classify(error).category is ErrorCategory.TRANSIENT


def _default_rules() -> dict[type[BaseException], ErrorClassification]:
    transient = ErrorClassification(
        ErrorCategory.TRANSIENT, ErrorSeverity.MEDIUM, True, "Transient infrastructure error"
    )
    rules: list[tuple[tuple[type[BaseException], ...], ErrorClassification]] = [
        ((ConnectionError, TimeoutError, asyncio.TimeoutError, OSError), transient),
        ((ValueError, KeyError),
         ErrorClassification(ErrorCategory.APPLICATION, ErrorSeverity.MEDIUM, False,
                             "Invalid or missing data")),
        ((TypeError, AttributeError),
         ErrorClassification(ErrorCategory.APPLICATION, ErrorSeverity.HIGH, False,
                             "Likely a bug in the handler")),
        ((MemoryError, SystemError),
         ErrorClassification(ErrorCategory.INFRASTRUCTURE, ErrorSeverity.CRITICAL, False)),
    ]
    return {kind: classification for kinds, classification in rules for kind in kinds}


_DEFAULT_RULES = _default_rules()
_DEFAULT_CLASSIFIER = ErrorClassifier()


def get_default_classifier() -> ErrorClassifier:
    """The classifier with the default rules."""
    return _DEFAULT_CLASSIFIER
