"""report.md shows every text from an input as written: an AOI name, a suggestion id, a warning
cannot add raw HTML, a table cell, a link, emphasis or a heading to the Markdown."""
from __future__ import annotations

import html
import string

from osmgap.export.report import ReportData, render_markdown

HOSTILE = "Evil</script><img src=x onerror=alert(1)> | *b* _i_ [l](http://x.org) `c` ~~s~~ # & \\ end"
MARKUP = set("|*_`[]~#<>&\\")  # what Markdown (with GFM tables) reads as more than text


def read_md(text: str) -> tuple[str, list[str]]:
    """``text`` as a CommonMark reader takes it within a line: backslash escapes and entities
    resolved; with the markup characters it left unescaped (which would format something)."""
    out, live, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in string.punctuation:
            out.append(text[i + 1])
            i += 2
            continue
        if c == "&":
            end = text.find(";", i)
            entity = text[i:end + 1]
            if end > 0 and html.unescape(entity) != entity:
                out.append(html.unescape(entity))
                i = end + 1
                continue
        if c in MARKUP:
            live.append(c)
        out.append(c)
        i += 1
    return "".join(out), live


def hostile_report() -> list[str]:
    row = {"id": f"gap {HOSTILE}", "kind": "missing_road", "status": "open", "reason": "new", "length_m": 50.0,
           "task_id": 2}
    data = ReportData(HOSTILE, "2025-01-06T04:00:00Z", [{"time": "2025-01-06T04:00:00Z"}], [row], [],
                      [{"aoi": HOSTILE, "reviewed": 2, "false_positives": 1, "precision": 0.5}], None, None,
                      {row["id"]: "https://mr.example.org/challenge/1/task/2"}, [f"# {HOSTILE}"], [f"1. {HOSTILE}"])
    return render_markdown(data).splitlines()


def test_the_title_shows_the_aoi_name_as_written():
    title = hostile_report()[0]
    assert title.startswith("# osmgap: ")
    assert read_md(title.removeprefix("# osmgap: ")) == (HOSTILE, [])


def test_a_name_in_the_precision_table_stays_in_its_cell():
    (row,) = [line for line in hostile_report() if line.endswith("| 2 | 1 | 50 % |")]
    shown, live = read_md(row)
    assert live == ["|"] * 5  # the table's own: four cells
    assert shown == f"| {HOSTILE} | 2 | 1 | 50 % |"


def test_a_suggestion_id_is_the_text_of_its_task_link():
    (item,) = [line for line in hostile_report() if line.startswith("- [")]
    label, _, rest = item.removeprefix("- [").partition("](https://mr.example.org/challenge/1/task/2)")
    assert read_md(label) == (f"gap {HOSTILE}", []) and rest == ": 50 m, open"


def test_notes_and_warnings_start_no_list_or_heading():
    lines = hostile_report()
    note = next(line for line in lines if line.startswith("> 1"))
    warning = next(line for line in lines if line.startswith("> ") and line != note)
    assert note.startswith("> 1\\. ") and read_md(note[2:]) == (f"1. {HOSTILE}", [])
    assert warning.startswith("> \\# ") and read_md(warning[2:]) == (f"# {HOSTILE}", [])
    assert not any("<" in line for line in lines)
