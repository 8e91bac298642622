"""The gdb/MI record parser (rrdbg/gdbmi.py): gdb 13's own output lines,
c-string escapes, nested tuples and lists, and one-line errors for anything
that is not MI."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rrdbg.gdbmi import MiParseError, parse_record, quote


def test_records_gdb_13_prints() -> None:
    r = parse_record(
        '*stopped,reason="breakpoint-hit",disp="keep",bkptno="1",frame={addr="0x080496e9",'
        'func="bump",args=[{name="by",value="1"}],file="debugme.c",line="25",arch="i386"},'
        'thread-id="1",stopped-threads="all",core="0"'
    )
    assert (r.kind, r.token, r.cls) == ("exec", None, "stopped")
    assert r.results["frame"]["args"] == [{"name": "by", "value": "1"}]
    assert r.results["frame"]["line"] == "25"
    r = parse_record('12^done,bkpt={number="1",type="breakpoint",thread-groups=["i1"]}')
    assert (r.kind, r.token, r.cls) == ("result", 12, "done")
    assert r.results["bkpt"]["thread-groups"] == ["i1"]
    r = parse_record('3^error,msg="No symbol \\"nope\\" in current context."')
    assert r.results["msg"] == 'No symbol "nope" in current context.'
    r = parse_record('~"\\nNo more reverse-execution history.\\n"')
    assert (r.kind, r.text) == ("console", "\nNo more reverse-execution history.\n")
    assert parse_record('=breakpoint-deleted,id="1"').kind == "notify"
    assert parse_record("(gdb) ").kind == "prompt"
    assert parse_record("7^running").results == {}
    r = parse_record('^done,stack=[frame={level="0"},frame={level="1"}],empty={},none=[]')
    assert r.results == {
        "stack": [{"frame": {"level": "0"}}, {"frame": {"level": "1"}}],
        "empty": {},
        "none": [],
    }
    assert parse_record('@"31044\\n"').text == "31044\n"
    assert parse_record('&"\\303\\251"').text == "\xc3\xa9"  # octal escapes, as bytes


@pytest.mark.parametrize(
    "line",
    [
        "total=55 counter=15",
        "^",
        '^done,x="unterminated',
        '^done,x={a="1"',
        '^done,x="1"junk',
        '5~"streams have no token"',
        "^done,=1",
    ],
)
def test_not_mi_is_a_parse_error(line: str) -> None:
    with pytest.raises(MiParseError, match="gdb/MI"):
        parse_record(line)


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"])))
def test_quoted_strings_round_trip(text: str) -> None:
    """``quote`` (commands to gdb) and the c-string parser agree."""
    assert parse_record(f"~{quote(text)}").text == text


@given(
    st.recursive(
        st.text(alphabet='ab"\\\n ', max_size=5),
        lambda inner: (
            st.dictionaries(st.sampled_from(["x", "y-z", "w_1"]), inner, max_size=3)
            | st.lists(inner, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_values_round_trip(value: object) -> None:
    def render(v: object) -> str:
        if isinstance(v, str):
            return quote(v)
        if isinstance(v, dict):
            return "{" + ",".join(f"{k}={render(x)}" for k, x in v.items()) + "}"
        assert isinstance(v, list)
        return "[" + ",".join(render(x) for x in v) + "]"

    assert parse_record(f"^done,v={render(value)}").results["v"] == value
