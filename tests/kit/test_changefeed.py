"""The kit's change-feed parts that need no database: opaque cursors (the same bytes the case
feed has always given out, another feed's refused) and page assembly (a page never passes a
change it did not read, and says whether more may follow)."""

from __future__ import annotations

import pytest

from upstander.kit.changefeed import assemble, decode_cursor, encode_cursor
from upstander.kit.pagination import InvalidCursor


def test_cursors_round_trip_and_keep_the_case_feeds_format() -> None:
    assert encode_cursor("case-changes", 42) == "WyJjYXNlLWNoYW5nZXMiLCA0Ml0"
    assert decode_cursor("case-changes", "WyJjYXNlLWNoYW5nZXMiLCA0Ml0") == 42
    assert decode_cursor("people-changes", None) == 0
    assert decode_cursor("people-changes", encode_cursor("people-changes", 7)) == 7


@pytest.mark.parametrize(
    "cursor",
    [
        encode_cursor("case-changes", 3),  # another feed's
        encode_cursor("people-changes", -1),
        "WyJwZW9wbGUtY2hhbmdlcyIsIHRydWVd",  # ["people-changes", true]
        "W10",
        "not base64!",
        "",
        "x" * 301,
    ],
)
def test_a_cursor_the_feed_did_not_make_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor("people-changes", cursor)


def test_a_page_skips_hidden_changes_and_resumes_past_them() -> None:
    rows = list(range(1, 10))  # seq 1..9; even ones hidden from this caller
    page, position, more = assemble(
        rows, after=0, limit=2, window=8, seq=lambda r: r, shown=lambda r: r % 2 == 1
    )
    assert page == [1, 3] and position == 3 and more is True
    page, position, more = assemble(
        rows[position:],
        after=position,
        limit=10,
        window=40,
        seq=lambda r: r,
        shown=lambda r: r % 2 == 1,
    )
    assert page == [5, 7, 9] and position == 9 and more is False


def test_a_window_of_hidden_changes_still_moves_the_position() -> None:
    rows = list(range(1, 6))
    page, position, more = assemble(
        rows, after=0, limit=1, window=4, seq=lambda r: r, shown=lambda r: False
    )
    assert page == [] and position == 4 and more is True
    assert assemble([], after=9, limit=5, window=20, seq=lambda r: r, shown=bool) == ([], 9, False)
