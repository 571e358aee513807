"""A study report: sections of text, tables and figures, written as one self-contained HTML file and Markdown.

The HTML embeds every figure as a base64 PNG (no network, one file to send); its contents list announces
each table and figure by id (`data-announced`), which the browser test checks against what is on the page.
The Markdown links the same figures as PNG files under `figures/`; each table is also written as CSV under
`tables/`.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.6em 0 1.6em; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f0f0; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3em; }
.note { color: #555; font-size: 0.85em; }
.published caption { color: #6a3d9a; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
nav li { margin: 0.1em 0; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.failed { color: #b00; }
#provenance td { text-align: left; }
"""


def mean_std(values: Sequence[float], digits: int = 3) -> str:
    """Returns 'mean ± std' over seeds ('value' for one, '—' for none), std with ddof=0 as numpy."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


@dataclass
class Table:
    key: str
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""
    published: bool = False


@dataclass
class Figure:
    key: str
    title: str
    png: bytes
    caption: str = ""


@dataclass
class Report:
    """Build with `section`, `text`, `table`, `figure`, `published_table`; `write(folder)` returns the HTML path."""

    title: str
    published: dict[str, Any] = field(default_factory=dict)
    blocks: list[tuple[str, Any]] = field(default_factory=list)
    provenance: list[tuple[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    config_yaml: str = ""

    def section(self, heading: str) -> None:
        self.blocks.append(("h2", heading))

    def text(self, paragraph: str) -> None:
        self.blocks.append(("p", paragraph))

    def table(self, title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], note: str = "",
              published: bool = False) -> Table:
        """Adds a table (cells shown as given); returns it."""
        n = sum(1 for kind, _ in self.blocks if kind == "table") + 1
        t = Table(f"table-{n}", title, [str(h) for h in header], [[str(c) for c in r] for r in rows], note, published)
        self.blocks.append(("table", t))
        return t

    def figure(self, title: str, fig: Any, caption: str = "") -> Figure:
        """Adds a matplotlib figure (saved as PNG at 120 dpi, then closed); returns it."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        n = sum(1 for kind, _ in self.blocks if kind == "figure") + 1
        f = Figure(f"figure-{n}", title, buf.getvalue(), caption)
        self.blocks.append(("figure", f))
        return f

    def published_table(self, key: str, columns: Sequence[str] | None = None) -> Table | None:
        """Adds the seed paper's table `key` from the study's published-numbers data (None when not declared)."""
        entry = self.published.get("tables", {}).get(key)
        if entry is None:
            return None
        cols = list(columns) if columns is not None else list(entry["columns"])
        index = [entry["columns"].index(c) for c in cols]
        rows = [[name] + [values[i] for i in index] for name, values in entry["rows"].items()]
        where = f"{self.published.get('seed', '')} {entry['table']}".strip()
        where += f", p. {entry['page']}" if entry.get("page") else f" ({entry['where']})" if entry.get("where") else ""
        note = f"Published: {where}. {entry.get('note', '')}".strip()
        return self.table(f"{entry['title']} — published", [entry.get("row_header", "")] + cols, rows, note, True)

    def announced(self) -> list[tuple[str, str]]:
        """Returns (id, title) of every table and figure, in order."""
        return [(b.key, b.title) for kind, b in self.blocks if kind in ("table", "figure")]

    # ------------------------------------------------------------------ writers
    def write(self, folder: Path) -> Path:
        """Writes report.html, report.md, figures/*.png and tables/*.csv into `folder`; returns the HTML path."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "figures").mkdir(exist_ok=True)
        (folder / "tables").mkdir(exist_ok=True)
        for kind, b in self.blocks:
            if kind == "figure":
                (folder / "figures" / f"{b.key}.png").write_bytes(b.png)
            elif kind == "table":
                with open(folder / "tables" / f"{b.key}.csv", "w", newline="", encoding="utf-8") as fh:
                    csv.writer(fh).writerows([b.header, *b.rows])
        (folder / "report.md").write_text(self.markdown(), encoding="utf-8")
        path = folder / "report.html"
        path.write_text(self.html(), encoding="utf-8")
        return path

    def markdown(self) -> str:
        """Returns the report as Markdown (figures linked as figures/<id>.png)."""
        out = [f"# {self.title}", ""]
        for kind, b in self.blocks:
            if kind == "h2":
                out += [f"## {b}", ""]
            elif kind == "p":
                out += [b, ""]
            elif kind == "table":
                out += [f"**{_label(b)}. {b.title}**", ""]
                out += ["| " + " | ".join(_md(h) for h in b.header) + " |", "|---" * len(b.header) + "|"]
                out += ["| " + " | ".join(_md(c) for c in r) + " |" for r in b.rows]
                out += ["", f"_{b.note}_", ""] if b.note else [""]
            else:
                out += [f"![{_label(b)}. {b.title}](figures/{b.key}.png)", "", f"_{_label(b)}. {b.title}. {b.caption}_", ""]
        out += self._failures_md() + ["## Provenance", ""] + [f"- **{k}**: {v}" for k, v in self.provenance]
        if self.config_yaml:
            out += ["", "```yaml", self.config_yaml.rstrip(), "```"]
        return "\n".join(out) + "\n"

    def _failures_md(self) -> list[str]:
        if not self.failures:
            return ["## Failed cells", "", "None.", ""]
        return ["## Failed cells", "", *[f"- {f}" for f in self.failures], ""]

    def html(self) -> str:
        """Returns the report as one self-contained HTML page."""
        e = html.escape
        body = [f"<h1>{e(self.title)}</h1>", "<nav><h2>Contents</h2><ul>"]
        for key, title in self.announced():
            label = ("Table " if key.startswith("table") else "Figure ") + key.split("-")[1]
            body.append(f'<li><a href="#{key}" data-announced="{key}">{label}. {e(title)}</a></li>')
        body.append('<li><a href="#failures">Failed cells</a></li><li><a href="#provenance">Provenance</a></li></ul></nav>')
        for kind, b in self.blocks:
            if kind == "h2":
                body.append(f"<h2>{e(b)}</h2>")
            elif kind == "p":
                body.append(f"<p>{e(b)}</p>")
            elif kind == "table":
                cls = ' class="published"' if b.published else ""
                rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in b.rows)
                head = "".join(f"<th>{e(h)}</th>" for h in b.header)
                note = f'<p class="note">{e(b.note)}</p>' if b.note else ""
                body.append(f'<table id="{b.key}"{cls}><caption>{_label(b)}. {e(b.title)}</caption>'
                            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{note}")
            else:
                data = base64.b64encode(b.png).decode("ascii")
                body.append(f'<figure id="{b.key}"><img src="data:image/png;base64,{data}" alt="{e(b.title)}">'
                            f"<figcaption>{_label(b)}. {e(b.title)}. {e(b.caption)}</figcaption></figure>")
        fails = "".join(f'<li class="failed">{e(f)}</li>' for f in self.failures) or "<li>None.</li>"
        body.append(f'<section id="failures"><h2>Failed cells</h2><ul>{fails}</ul></section>')
        prov = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in self.provenance)
        body.append(f'<section id="provenance"><h2>Provenance</h2><table><tbody>{prov}</tbody></table>')
        if self.config_yaml:
            body.append(f"<details><summary>Config</summary><pre>{e(self.config_yaml)}</pre></details>")
        body.append("</section>")
        return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
                f"<title>{e(self.title)}</title><style>{CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


def _label(block: Table | Figure) -> str:
    return ("Table " if isinstance(block, Table) else "Figure ") + block.key.split("-")[1]


def _md(text: str) -> str:
    return text.replace("|", "\\|")
