"""The unified social credit code check digit, against hand-worked and published codes."""

from __future__ import annotations

import pytest

from quality.uscc import check_char, is_valid_uscc, region_of

# Worked by hand from GB 32100-2015 (alphabet 0-9 A-H J-N P-R T U W-Y; weights
# 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28):
# "91110105MA01ABCD1": values 9 1 1 1 0 1 0 5 21 10 0 1 10 11 12 13 1; weighted sum 1764;
#   1764 mod 31 = 28; 31 - 28 = 3 -> check character "3".
# "91110105MA01ABCD0": weighted sum 1764 - 28 = 1736 = 56 x 31, mod 31 = 0; 31 - 0 = 31,
#   which the rule maps to 0 -> check character "0".
# "91110105MA01ABCDA": A = 10, sum 1736 + 280 = 2016, mod 31 = 1; 31 - 1 = 30 -> "Y".
HAND_WORKED = {
    "91110105MA01ABCD1": "3",
    "91110105MA01ABCD0": "0",
    "91110105MA01ABCDA": "Y",
}
# Published codes of well-known enterprises (their business licences are public).
PUBLISHED = ["91350100M000100Y43", "914403001922038216", "91110000802100433B"]


@pytest.mark.parametrize(("first17", "expected"), HAND_WORKED.items())
def test_check_char_matches_hand_worked_cases(first17: str, expected: str) -> None:
    assert check_char(first17) == expected
    assert is_valid_uscc(first17 + expected)


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_codes_are_valid(code: str) -> None:
    assert is_valid_uscc(code)


@pytest.mark.parametrize(
    "code",
    [
        "91110105MA01ABCD14",  # wrong check character
        "91110105MA01ABCD1",  # 17 characters
        "91110105MA01ABCDI3",  # I is not in the alphabet
        "91110105ma01abcd13",  # lower case is not the code
        "",
        None,
    ],
)
def test_invalid_codes_are_rejected(code: str | None) -> None:
    assert not is_valid_uscc(code)


def test_region_is_positions_3_to_8() -> None:
    assert region_of("91110105MA01ABCD13") == "110105"


def test_check_char_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        check_char("9111010SMA01ABCD1")
