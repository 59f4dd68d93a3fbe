"""Receipt codes and attachment names, without a database: format, entropy, normalisation,
lookup and slow hashing; file name sanitising; settings that production refuses."""

from __future__ import annotations

import math
import re

import pytest
from pydantic import ValidationError

from upstander.intake.reports import receipts
from upstander.intake.reports.files import sanitise_filename
from upstander.intake.settings import Settings

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SHOWN = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){3}$")


def test_a_code_is_20_crockford_characters_carrying_100_bits() -> None:
    code = receipts.new_code()

    assert len(code) == 20
    assert set(code) <= set(CROCKFORD)
    assert receipts.ALPHABET == CROCKFORD
    assert receipts.CODE_LENGTH * math.log2(len(receipts.ALPHABET)) >= 100


def test_a_code_is_shown_as_four_groups_of_five() -> None:
    shown = receipts.display(receipts.new_code())

    assert SHOWN.match(shown), shown


def test_codes_do_not_repeat_and_use_the_whole_alphabet() -> None:
    codes = [receipts.new_code() for _ in range(1000)]

    assert len(set(codes)) == 1000
    assert set("".join(codes)) == set(CROCKFORD)


def test_typed_codes_are_forgiven_case_separators_and_look_alikes() -> None:
    code = "K7QW29XMDA4RT0PZZ81C"

    assert receipts.normalise("k7qw2-9xmda-4rt0p-zz81c") == code
    assert receipts.normalise(" K7QW2 9XMDA 4RTOP ZZ8lC ") == code  # O→0, l→1
    assert receipts.normalise("K7QW2-9XMDA-4RT0P-ZZ8IC") == code  # I→1


@pytest.mark.parametrize(
    "typed", ["", "K7QW2-9XMDA-4RT0P", "K7QW2-9XMDA-4RT0P-ZZ81C-0", "U7QW2-9XMDA-4RT0P-ZZ81C"]
)
def test_what_cannot_be_a_code_normalises_to_none(typed: str) -> None:
    assert receipts.normalise(typed) is None


def test_the_lookup_key_is_an_hmac_under_the_receipt_key() -> None:
    code = receipts.new_code()

    first = receipts.lookup_key(code, "key-one")

    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert receipts.lookup_key(code, "key-one") == first
    assert receipts.lookup_key(code, "key-two") != first
    assert code.lower() not in first.lower()


def test_the_slow_hash_is_salted_scrypt_and_verifies_only_its_code() -> None:
    code = receipts.new_code()

    stored = receipts.hash_code(code)

    scheme, salt, digest = stored.split("$")
    assert scheme == "scrypt" and salt and digest
    assert receipts.hash_code(code) != stored  # a fresh salt every time
    assert receipts.verify_code(code, stored)
    assert not receipts.verify_code(receipts.new_code(), stored)
    assert not receipts.verify_code(None, None)
    assert not receipts.verify_code(code, "md5$x$y")


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("photo.jpg", "image/jpeg", "photo.jpg"),
        ("../../etc/passwd", "text/plain", "passwd"),
        ("C:\\Users\\me\\notes.txt", "text/plain", "notes.txt"),
        ("rm -rf $(x);.pdf", "application/pdf", "rm -rf_(x)_.pdf"),
        ("a\x00b\u202ec.png", "image/png", "abc.png"),
        ("...", "image/png", "attachment.png"),
        (None, "audio/mpeg", "attachment.mp3"),
        ("foto del café.jpg", "image/jpeg", "foto del café.jpg"),
    ],
)
def test_file_names_are_sanitised(name: str | None, content_type: str, expected: str) -> None:
    assert sanitise_filename(name, content_type) == expected


def test_long_file_names_keep_their_extension() -> None:
    name = sanitise_filename("x" * 500 + ".pdf", "application/pdf")

    assert len(name) == 200
    assert name.endswith(".pdf")


def test_production_refuses_the_development_receipt_key() -> None:
    with pytest.raises(ValidationError, match="UPSTANDER_RECEIPT_KEY"):
        Settings(mode="production", kek="k1:" + "A" * 43 + "=", service_secret="s" * 32)

    settings = Settings(
        mode="production",
        kek="k1:" + "A" * 43 + "=",
        service_secret="s" * 32,
        receipt_key="r" * 32,
        escrow_index_key="e" * 32,  # docs/escrow.md
        record_signing_key="c2lnbmluZy1rZXktb2YtcHJvZHVjdGlvbi0zMmJ5dGU=",
    )
    assert settings.max_attachment_bytes == 10 * 1024 * 1024
    assert "application/pdf" in settings.attachment_types
