"""The ad-law linter: words in a sales script that can cost a brand a fine, with rewrites.

Pure: lines in, findings out. Every generated script and every answer goes through it
before the host says it; `linkup lint` runs it over a file. docs/lint.md lists the rules.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from script_gen.lint_rules import COMPILED


@dataclass(frozen=True)
class Finding:
    line: int  # from 1
    start: int  # character span in the line, end exclusive
    end: int
    rule: str
    text: str  # the offending words, line[start:end]
    suggestion: str  # what to say instead of `text`

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def lint(lines: Sequence[str]) -> list[Finding]:
    """Findings in line order, then position; overlapping matches keep the first-starting, longest one."""
    findings: list[Finding] = []
    for number, line in enumerate(lines, start=1):
        findings += _lint_line(number, line)
    return findings


def is_clean(text: str) -> bool:
    return not _lint_line(1, text)


def _lint_line(number: int, line: str) -> list[Finding]:
    candidates = []
    for order, (rule, pattern, suggestion) in enumerate(COMPILED):
        for match in pattern.finditer(line):
            if match.end() > match.start():
                candidates.append((match.start(), -match.end(), order, rule, match, suggestion))
    candidates.sort(key=lambda c: c[:3])
    findings: list[Finding] = []
    taken_until = 0
    for start, neg_end, _, rule, match, suggestion in candidates:
        if start < taken_until:
            continue
        findings.append(Finding(number, start, -neg_end, rule, match.group(), match.expand(suggestion)))
        taken_until = -neg_end
    return findings
