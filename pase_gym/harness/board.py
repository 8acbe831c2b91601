"""The leaderboard: a Markdown table and a static web site built from signed result files.

* **Signing** (:func:`sign`): whoever runs the board replays a results file
  (``pase-bench verify``) and then signs it with an HMAC-SHA256 of its bytes under the
  evaluator's key (the hidden split's key, :func:`pase_gym.harness.hidden.load_key`). The
  signature sits beside the file (``results.jsonl.sig``); changing one byte of the file breaks it.
* **Building** (:func:`collect`, :func:`write_board`): every results file is read with the
  strict record checks; with the key, a file without a valid signature is refused (the board
  is built only from verified results); without it the board says its rows are unsigned. Each
  agent's rows are matched to its submission folder (``leaderboard/submissions/*``) through the
  manifest (``agent: registry:NAME`` or the manifest's name). The board has one column per
  metric and suite (the public ``paper`` suite and the ``hidden`` one side by side), the mean
  over seeds and its 95% bootstrap interval, and a page per submission with its manifest and
  its safe success per fault family.

The site is plain HTML with a few lines of inline JavaScript (sorting by a column, filtering
by text); every text that comes from a submission is escaped.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pase_gym.errors import ResultsError
from pase_gym.harness.metrics import Aggregate, is_safe_success, summarise
from pase_gym.harness.records import Record, RunStore
from pase_gym.harness.submission import Manifest, load_manifest

COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("safe_success", "safe success", 2),
    ("success_rate", "recovered", 2),
    ("detection_f1", "detection F1", 2),
    ("localization", "localization", 2),
    ("mttr", "MTTR (s)", 1),
    ("safety_score", "safety", 2),
    ("cost", "cost", 1),
)
"""(metric, column label, decimals), the headline first."""
SUITE_ORDER = ("paper", "hidden", "unseen")
SIGNATURE_SUFFIX = ".sig"


# -- signatures -------------------------------------------------------------------------------
def _digest(data: bytes, key: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def signature_path(path: Path) -> Path:
    """Where the signature of results file ``path`` lives."""
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def sign(path: Path, key: bytes, *, verified: int) -> Path:
    """Sign results file ``path`` (after ``verified`` of its records were replayed)."""
    data = Path(path).read_bytes()
    out = signature_path(Path(path))
    body = {
        "file": Path(path).name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "verified_records": int(verified),
        "hmac_sha256": _digest(data, key),
    }
    out.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    return out


def signature_ok(path: Path, key: bytes) -> bool:
    """Whether ``path`` carries a valid signature under ``key``."""
    sig = signature_path(Path(path))
    try:
        body = json.loads(sig.read_text(encoding="utf-8"))
        claimed = str(body["hmac_sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return hmac.compare_digest(claimed, _digest(Path(path).read_bytes(), key))


# -- the board --------------------------------------------------------------------------------
@dataclass
class Entry:
    """One agent on the board: its submission, and its records per suite."""

    agent: str
    submission: str
    manifest: Manifest | None
    records: dict[str, list[Record]] = field(default_factory=dict)
    summary: dict[str, dict[str, Aggregate]] = field(default_factory=dict)
    signed: bool | None = None  # None: built without the key, not checked
    isolation: set[str] = field(default_factory=set)

    def families(self, suite: str) -> dict[str, tuple[float, int]]:
        """Fault family -> (safe success, episodes) on ``suite``."""
        by: dict[str, list[bool]] = defaultdict(list)
        for r in self.records.get(suite, []):
            for family in sorted(set(r["families"])):
                by[family].append(is_safe_success(r))
        return {f: (sum(v) / len(v), len(v)) for f, v in sorted(by.items())}


@dataclass
class Board:
    """Everything the Markdown and the site show."""

    entries: list[Entry]
    suites: list[str]
    sources: list[str]
    keyed: bool


def _submissions(folder: Path | None) -> dict[str, tuple[str, Manifest]]:
    """Agent name -> (submission folder name, manifest)."""
    out: dict[str, tuple[str, Manifest]] = {}
    if folder is None or not folder.is_dir():
        return out
    for sub in sorted(p for p in folder.iterdir() if (p / "manifest.yaml").is_file()):
        manifest = load_manifest(sub)
        agent = manifest.agent.split(":", 1)[1] if manifest.agent.startswith("registry:") else None
        out[agent or manifest.name] = (sub.name, manifest)
    return out


def collect(
    results: Sequence[Path], submissions: Path | None = None, key: bytes | None = None
) -> Board:
    """Read and check every results file, and gather the board.

    Raises:
        ResultsError: a results file is missing, fails the record checks, or (with ``key``)
            has no valid signature.
    """
    known = _submissions(submissions)
    entries: dict[str, Entry] = {}
    suites: set[str] = set()
    for path in results:
        path = Path(path)
        if not path.is_file():
            raise ResultsError(f"{path}: no such results file")
        signed = None if key is None else signature_ok(path, key)
        if signed is False:
            raise ResultsError(
                f"{path}: no valid signature ({signature_path(path).name}); the board is built "
                "only from verified results: replay it (pase-bench verify) and sign it "
                "(pase-bench leaderboard sign)"
            )
        for record in RunStore(path).load().values():
            agent = str(record["agent"])
            folder, manifest = known.get(agent, (agent, None))
            entry = entries.setdefault(agent, Entry(agent, folder, manifest))
            entry.records.setdefault(str(record["suite"]), []).append(record)
            entry.isolation.add(str(record["isolation"]))
            entry.signed = signed if entry.signed in (None, True) else entry.signed
            suites.add(str(record["suite"]))
    for entry in entries.values():
        entry.summary = {s: summarise(rs)[entry.agent] for s, rs in entry.records.items()}
    ordered = sorted(suites, key=lambda s: (SUITE_ORDER.index(s) if s in SUITE_ORDER else 9, s))
    headline = ordered[0] if ordered else ""

    def rank(e: Entry) -> tuple[float, str]:
        a = e.summary.get(headline, {}).get("safe_success")
        return (-(a.mean if a is not None and a.mean is not None else -1.0), e.agent)

    return Board(
        sorted(entries.values(), key=rank), ordered, [str(p) for p in results], key is not None
    )


def _cell(a: Aggregate | None, digits: int) -> str:
    if a is None or a.mean is None:
        return "n/a"
    if a.low is None or a.high is None:
        return f"{a.mean:.{digits}f}"
    return f"{a.mean:.{digits}f} [{a.low:.{digits}f}, {a.high:.{digits}f}]"


def _status(e: Entry) -> str:
    how = "in-process" if "in-process" in e.isolation else "sandbox"
    signed = {True: "signed", False: "BAD SIGNATURE", None: "unsigned"}[e.signed]
    truth = (
        ", reads the ground truth"
        if any(r.get("uses_ground_truth") for rs in e.records.values() for r in rs)
        else ""
    )
    return f"{how}, {signed}{truth}"


def markdown(board: Board) -> str:
    """The board as a Markdown table (for the README)."""
    head = ["#", "agent"]
    for suite in board.suites:
        head += [f"{label} ({suite})" for _, label, _ in COLUMNS[:3]]
    head.append("runs")
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for i, e in enumerate(board.entries, 1):
        row = [str(i), e.submission]
        for suite in board.suites:
            m = e.summary.get(suite, {})
            row += [_cell(m.get(name), d) for name, _, d in COLUMNS[:3]]
        row.append(_status(e))
        lines.append("| " + " | ".join(row) + " |")
    note = (
        "Mean over seeds [95% bootstrap interval]; ranked by safe success on "
        f"`{board.suites[0] if board.suites else '-'}`. Built from "
        + ", ".join(f"`{s}`" for s in board.sources)
        + ("; every file signed." if board.keyed else "; signatures not checked (no key).")
    )
    return "\n".join([*lines, "", note]) + "\n"


_SCRIPT = """
function cellValue(row, i) {
  const cell = row.children[i], n = parseFloat(cell.dataset.value);
  return isNaN(n) ? cell.textContent : n;
}
function sortBy(th) {
  const body = th.closest('table').tBodies[0];
  const i = [...th.parentNode.children].indexOf(th);
  const dir = th.dataset.dir === 'desc' ? 'asc' : 'desc';
  th.parentNode.querySelectorAll('th').forEach(h => delete h.dataset.dir);
  th.dataset.dir = dir;
  [...body.rows].sort((x, y) => {
    const p = cellValue(x, i), q = cellValue(y, i);
    const o = (typeof p === 'number' && typeof q === 'number') ? p - q
      : String(p).localeCompare(String(q));
    return dir === 'asc' ? o : -o;
  }).forEach(r => body.appendChild(r));
}
function filterRows(box) {
  const q = box.value.toLowerCase();
  document.querySelectorAll('#board tbody tr').forEach(r => {
    r.hidden = !r.textContent.toLowerCase().includes(q);
  });
}
"""
_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}td{white-space:nowrap}"
    "th{cursor:pointer;background:#f4f4f4}td:nth-child(2),th:nth-child(2){text-align:left}"
)


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f"<script>{_SCRIPT}</script></head><body>\n{body}\n</body></html>\n"
    )


def _td(a: Aggregate | None, digits: int) -> str:
    value = "" if a is None or a.mean is None else f"{a.mean:.6g}"
    return f"<td data-value='{value}'>{html.escape(_cell(a, digits))}</td>"


def page_name(entry: Entry) -> str:
    """The file of an entry's page: a slug of its submission name and a hash of the name, so
    that no name can collide with another entry's page or with ``index.html``."""
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in entry.submission)[:40]
    tag = hashlib.sha256(entry.submission.encode("utf-8")).hexdigest()[:8]
    return f"agent-{slug}-{tag}.html"


def index_html(board: Board) -> str:
    """The board page: one sortable, filterable table."""
    head = "<th>#</th><th>agent</th>" + "".join(
        f"<th onclick='sortBy(this)'>{html.escape(label)} ({html.escape(s)})</th>"
        for s in board.suites
        for _, label, _ in COLUMNS
    )
    head += "<th>runs</th>"
    rows = []
    for i, e in enumerate(board.entries, 1):
        cells = "".join(
            _td(e.summary.get(s, {}).get(name), d) for s in board.suites for name, _, d in COLUMNS
        )
        link = f"<a href='{html.escape(page_name(e))}'>{html.escape(e.submission)}</a>"
        rows.append(
            f"<tr><td data-value='{i}'>{i}</td><td>{link}</td>{cells}"
            f"<td>{html.escape(_status(e))}</td></tr>"
        )
    signed = "every results file signed" if board.keyed else "signatures not checked (no key)"
    body = (
        "<h1>pase-gym leaderboard</h1>"
        f"<p>Mean over seeds [95% bootstrap interval]; click a column to sort; {signed}. "
        "Public suite: <code>paper</code>; the <code>hidden</code> suite is drawn from a key "
        "only the board holds.</p>"
        "<p><input id='filter' placeholder='filter' oninput='filterRows(this)'></p>"
        f"<table id='board'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return _page("pase-gym leaderboard", body)


def entry_html(board: Board, e: Entry) -> str:
    """One submission's page: its manifest, its metrics per suite, its families."""
    parts = [f"<h1>{html.escape(e.submission)}</h1><p><a href='index.html'>board</a></p>"]
    if e.manifest is not None:
        m = e.manifest
        rows = [
            ("authors", ", ".join(m.authors)),
            ("contact", m.contact),
            ("licence", m.licence),
            ("agent", m.agent),
            ("model", f"{m.model.name} ({m.model.parameters:,} parameters)"),
            ("reads", m.reads),
            ("extras", ", ".join(m.extras) or "none"),
            ("description", m.description),
        ]
        parts.append(
            "<table>"
            + "".join(
                f"<tr><th>{html.escape(k)}</th><td style='text-align:left'>{html.escape(str(v))}"
                "</td></tr>"
                for k, v in rows
            )
            + "</table>"
        )
    parts.append(f"<p>runs: {html.escape(_status(e))}</p>")
    for suite in board.suites:
        if suite not in e.summary:
            continue
        n = len(e.records[suite])
        cells = "".join(
            f"<tr><th>{html.escape(label)}</th>{_td(e.summary[suite].get(name), d)}</tr>"
            for name, label, d in COLUMNS
        )
        fam = "".join(
            f"<tr><th>{html.escape(f)}</th><td data-value='{v:.6g}'>{v:.2f}</td><td>{k}</td></tr>"
            for f, (v, k) in e.families(suite).items()
        )
        parts.append(
            f"<h2>{html.escape(suite)} ({n} episodes)</h2><table>{cells}</table>"
            "<h3>safe success by fault family</h3><table><tr><th>family</th><th>safe success"
            f"</th><th>episodes</th></tr>{fam}</table>"
        )
    return _page(f"{e.submission} - pase-gym leaderboard", "".join(parts))


def write_board(board: Board, out: Path) -> list[Path]:
    """Write ``board.md``, ``index.html`` and one page per entry into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "board.md", out / "index.html"]
    written[0].write_text(markdown(board), encoding="utf-8")
    written[1].write_text(index_html(board), encoding="utf-8")
    for e in board.entries:
        path = out / page_name(e)
        path.write_text(entry_html(board, e), encoding="utf-8")
        written.append(path)
    return written
