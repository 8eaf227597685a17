"""The metric names a PromQL expression reads, found by a small tokenizer.

It knows the PromQL that dbkeeper's rules and dashboard use: functions and aggregations
(with ``by``/``without``), vector matching (``on``, ``ignoring``, ``group_left``,
``group_right``), label matchers, range and subquery brackets, ``offset``, strings and
numbers. Grafana's template variables (``$name``, ``${name}``, ``$__rate_interval``) are
replaced by plain values first, and Grafana's ``label_values(expr, label)`` is reduced to
its expression. promtool checks the syntax separately; this only names the metrics.
"""

from __future__ import annotations

import re

_GRAFANA_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<expr>.*),\s*[A-Za-z_]\w*\s*\)\s*$", re.S)
_GRAFANA_INTERVAL = re.compile(r"\$__\w+|\$\{__\w+\}")
_GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`")
_LABEL_MATCHERS = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+")
_TOKEN = re.compile(
    r"(?P<number>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)(?P<call>\s*\()?"
)
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "inf",
        "nan",
    }
)


def grafana_to_promql(expr: str) -> str:
    """A Grafana query with its variables replaced, as Prometheus would receive it."""
    match = _GRAFANA_LABEL_VALUES.match(expr)
    if match:
        expr = match.group("expr")
    expr = _GRAFANA_INTERVAL.sub("5m", expr)
    return _GRAFANA_VARIABLE.sub(lambda m: next(g for g in m.groups() if g), expr)


def metric_names(expr: str) -> set[str]:
    """Every metric name ``expr`` selects (not functions, keywords or label names)."""
    text = _STRING.sub('""', grafana_to_promql(expr))
    text = _LABEL_MATCHERS.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    names: set[str] = set()
    for token in _TOKEN.finditer(text):
        ident = token.group("ident")
        if ident is None or token.group("call") or ident.lower() in _KEYWORDS:
            continue
        names.add(ident)
    return names
