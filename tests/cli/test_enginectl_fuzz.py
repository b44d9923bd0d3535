"""Fuzzing ``enginectl validate``: whatever a file holds, the answer is an exit status and lines.

The documents of the control plane's fuzz test (``tests/server/test_server_fuzz.py``: mutated
examples and crafted ones) are written to files, and files that are not UTF-8 at all join them;
``enginectl validate`` checks them many files per call, in process. For every call:

* the exit status is 0 (every file valid) or 1, never anything else;
* stderr has no traceback and no "unexpected error" (the CLI's last resort for a bug);
* each file gets its own lines, in order: ``OK name:version sha256:...`` and its warnings, or
  ``path: cannot read: ...``, or one line per problem, shaped ``path:LINE:COL: message`` with
  LINE and COL from 1; nothing else.

A call that fails is run again one file at a time, so the report names the very files.
"""

from __future__ import annotations

import codecs
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli import enginectl_main
from tests.server.test_server_fuzz import EXAMPLES, fuzz_document, heavy_documents

SEED = 20260214
TEXT_FILES = 2_200
BYTE_FILES = 240
PER_CALL = 60
OK_LINE = re.compile(r"OK [a-z0-9][a-z0-9-]*:[0-9]+ sha256:[0-9a-f]{64}")
HEAVY = ("at-limit", "over-limit", "many-steps", "flow-100000", "map-100000", "billion-laughs")
"""The heavy documents worth the CLI's time (the others repeat what the server test covers)."""


def _not_utf8(rng: random.Random) -> tuple[str, bytes]:
    """Bytes that are not UTF-8, or only nearly so."""
    example = rng.choice(EXAMPLES)[1]
    at = rng.randrange(len(example))
    choice = rng.random()
    if choice < 0.2:
        return "random-bytes", bytes(rng.randrange(256) for _ in range(rng.randint(1, 400)))
    if choice < 0.35:
        bad = rng.choice(
            (
                b"\xff",
                b"\xfe",
                b"\xc0\xaf",  # an overlong '/'
                b"\xed\xa0\x80",  # a surrogate, encoded
                b"\xf4\x90\x80\x80",  # past U+10FFFF
                b"\xe2\x82",  # cut short
                b"\x80",
                b"\xf8\x88\x80\x80\x80",
            )
        )
        encoded = example.encode()
        return "invalid-sequence", encoded[:at] + bad + encoded[at:]
    if choice < 0.5:
        return "latin-1", (example[:at] + "café ñ ü" + example[at:]).encode("latin-1", "replace")
    if choice < 0.65:
        encoding = rng.choice(("utf-16", "utf-16-le", "utf-32", "cp1252", "shift_jis"))
        return encoding, (example[:at] + "é中" + example[at:]).encode(encoding, "replace")
    if choice < 0.75:
        return "utf-8-bom", codecs.BOM_UTF8 + example.encode()
    if choice < 0.85:
        return "nul-bytes", example.encode()[:at] + b"\x00" * rng.randint(1, 20)
    encoded = example.encode()
    cut = rng.randrange(len(encoded))
    return "cut-utf-8", (example[: len(example) // 2] + "中文😀").encode()[:cut] + encoded[-1:]


@dataclass
class Findings:
    """What the calls printed, and every broken property."""

    files: int = 0
    calls: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: list[tuple[str, int, str]] = field(default_factory=list)

    def fault(self, kind: str, content: bytes, what: str) -> None:
        shown = content if len(content) <= 300 else content[:300]
        self.faults.append(
            (kind, len(content), f"{what}\n    file ({len(content):,} bytes): {shown!r}")
        )

    def verdict(self) -> str:
        """Each kind of fault: how often, and its three smallest files."""
        kinds = Counter(kind for kind, _, _ in self.faults)
        out = []
        for kind, count in kinds.most_common():
            out.append(f"== {kind} ({count} files); the smallest:")
            smallest = sorted((size, shown) for k, size, shown in self.faults if k == kind)
            out += [shown for _, shown in smallest[:3]]
        return "\n".join(out)


def _located(line: str, path: str) -> re.Match[str] | None:
    return re.fullmatch(re.escape(path) + r":([0-9]+):([0-9]+): (.+)", line)


def check_output(
    findings: Findings, files: list[tuple[Path, bytes]], status: int, out: str, err: str
) -> bool:
    """Check one call's output; record what is wrong. True when everything held."""
    faults = len(findings.faults)
    everything = b"".join(content for _, content in files)
    if status not in (0, 1):
        findings.fault(f"exit status {status}", everything, f"exit status {status}: {err!r}")
    crashed = "Traceback" in err or "unexpected error" in err
    if crashed:
        findings.fault("crash on stderr", everything, f"stderr: {err.strip()[:500]}")
    lines = out.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    position = 0
    all_valid = True
    for path, content in files:
        name = str(path)
        ours: list[str] = []
        if position < len(lines) and lines[position].startswith("OK "):
            ours.append(lines[position])  # a valid file's first line does not name it
            position += 1
        while position < len(lines) and lines[position].startswith(name + ":"):
            ours.append(lines[position])
            position += 1
        if not ours:
            if not crashed:  # after a crash, the files left are not looked at: no news
                findings.fault("no output for a file", content, f"nothing printed for {name}")
            all_valid = False
            continue
        if ours[0].startswith("OK "):
            findings.outcomes["valid"] += 1
            if not OK_LINE.fullmatch(ours[0]):
                findings.fault("malformed OK line", content, f"OK line: {ours[0]!r}")
            for warning in ours[1:]:
                located = _located(warning, name)
                if located is None or not located[3].startswith("warning: "):
                    findings.fault("malformed warning", content, f"after OK: {warning!r}")
            continue
        all_valid = False
        if ours[0].startswith(name + ": cannot read: "):
            findings.outcomes["unreadable"] += 1
            if len(ours) > 1:
                findings.fault("lines after cannot read", content, f"{ours!r}")
            continue
        findings.outcomes["invalid"] += 1
        errors = 0
        for problem in ours:
            located = _located(problem, name)
            if located is None:
                findings.fault("unlocated problem line", content, f"problem line: {problem!r}")
            elif min(int(located[1]), int(located[2])) < 1:
                findings.fault("problem before line 1", content, f"problem line: {problem!r}")
            elif not located[3].startswith("warning: "):
                errors += 1
        if not errors:
            findings.fault("invalid without an error", content, f"lines: {ours!r}")
    for extra in lines[position:]:
        findings.fault("line of no file", everything, f"unattributed line: {extra!r}")
    if status in (0, 1) and status != (0 if all_valid else 1):
        findings.fault("wrong exit status", everything, f"exit status {status}, lines {lines!r}")
    return len(findings.faults) == faults


def validate(
    capsys: pytest.CaptureFixture[str], findings: Findings, files: list[tuple[Path, bytes]]
) -> None:
    """``enginectl validate`` the files in one call; if anything breaks, one call per file."""
    status = enginectl_main(["validate", *(str(path) for path, _ in files)])
    captured = capsys.readouterr()
    scratch = Findings()
    if check_output(scratch, files, status, captured.out, captured.err) or len(files) == 1:
        findings.calls += 1
        findings.files += len(files)
        findings.outcomes.update(scratch.outcomes)
        findings.faults += scratch.faults
        return
    for one in files:  # name the culprits
        validate(capsys, findings, [one])


def test_two_thousand_fuzzed_files_exit_0_or_1_with_located_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(SEED)
    findings = Findings()
    documents: list[tuple[str, bytes]] = [
        (label, text.encode()) for label, text in heavy_documents() if label in HEAVY
    ]
    documents += [
        (label, text.encode()) for label, text in (fuzz_document(rng) for _ in range(TEXT_FILES))
    ]
    documents += [_not_utf8(rng) for _ in range(BYTE_FILES)]
    rng.shuffle(documents)
    for start in range(0, len(documents), PER_CALL):
        batch: list[tuple[Path, bytes]] = []
        for number, (label, content) in enumerate(documents[start : start + PER_CALL], start):
            path = tmp_path / f"case-{number:05d}-{re.sub(r'[^a-z0-9-]', '', label)[:30]}.yaml"
            path.write_bytes(content)
            batch.append((path, content))
        validate(capsys, findings, batch)

    codes = ", ".join(f"{k}={n}" for k, n in sorted(findings.outcomes.items()))
    print(
        f"\nenginectl validate: {findings.files} files in {findings.calls} calls; {codes}; "
        f"{len(findings.faults)} faults"
    )
    assert findings.files >= 2_000
    if findings.faults:
        raise AssertionError(findings.verdict())
    assert findings.outcomes["valid"] and findings.outcomes["invalid"]
    assert findings.outcomes["unreadable"]


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(content=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_hypothesis_arbitrary_bytes_exit_0_or_1_with_located_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    findings = Findings()
    path = tmp_path / "case.yaml"
    path.write_bytes(content)
    validate(capsys, findings, [(path, content)])
    if findings.faults:
        raise AssertionError(findings.verdict())
