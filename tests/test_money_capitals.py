"""Amounts in Chinese capitals (大写金额) as a notice writes them: disburse.money.yuan_in_capitals."""

from __future__ import annotations

import pytest

from disburse.money import yuan_in_capitals


@pytest.mark.parametrize("fen, text", [
    (0, "零元整"),
    (5, "伍分"),                                   # 0.05: no 元 below one yuan
    (50, "伍角"),                                  # 0.50
    (55, "伍角伍分"),
    (100, "壹元整"),
    (105, "壹元零伍分"),                            # 角 is 0, 分 is not: 零 after 元
    (110, "壹元壹角"),
    (12150, "壹佰贰拾壹元伍角"),
    (1000, "壹拾元整"),                             # 10.00: a ten at the start is 壹拾
    (1010, "壹拾元零壹角"),                         # the yuan ends in 0, 角 is not: 零 after 元
    (1500, "壹拾伍元整"),
    (10000, "壹佰元整"),
    (10100, "壹佰零壹元整"),
    (11000, "壹佰壹拾元整"),                        # inside a number, a ten is 壹拾 too
    (100100, "壹仟零壹元整"),                       # two zeros inside: one 零
    (168032, "壹仟陆佰捌拾元零叁角贰分"),           # the standard's example, its first form
    (1640902, "壹万陆仟肆佰零玖元零贰分"),          # the standard's own example
    (10700053, "壹拾万柒仟元零伍角叁分"),          # the standard's example, its first form
    (10000100, "壹拾万零壹元整"),                    # 100,001.00
    (12345678, "壹拾贰万叁仟肆佰伍拾陆元柒角捌分"),  # 123,456.78
    (100000000, "壹佰万元整"),
    (100001000, "壹佰万零壹拾元整"),                 # 1,000,010.00: the ten after 零 is 壹拾
    (123000000, "壹佰贰拾叁万元整"),
    (1000000000, "壹仟万元整"),
    (10000000000, "壹亿元整"),
    (10001000000, "壹亿零壹万元整"),
    (11000000000, "壹亿壹仟万元整"),                 # no gap before 仟万: no 零
    (100000000010, "壹拾亿元零壹角"),                # 1,000,000,000.10
    (100000000001, "壹拾亿元零壹分"),
    (100000000000000, "壹万亿元整"),
    (100010000000000, "壹万零壹亿元整"),
    (999999999999999999, "玖仟玖佰玖拾玖万玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
])
def test_yuan_in_capitals(fen: int, text: str) -> None:
    assert yuan_in_capitals(fen) == text


@pytest.mark.parametrize("bad", [-1, 1.5, True, "100"])
def test_yuan_in_capitals_takes_whole_fen_only(bad) -> None:
    with pytest.raises(ValueError):
        yuan_in_capitals(bad)


def test_every_amount_up_to_a_hundred_yuan_has_no_doubled_or_trailing_zero() -> None:
    for fen in range(1, 10001):
        text = yuan_in_capitals(fen)
        assert "零零" not in text and not text.endswith("零") and not text.startswith("零"), (fen, text)
        assert text.endswith(("整", "角", "分")), (fen, text)
