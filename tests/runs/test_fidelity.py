"""Fidelity parsing, the cost model and menu, and fidelity columns."""

from __future__ import annotations

import numpy as np
import pytest

from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.runs.fidelity import (
    CostModel,
    Fidelity,
    FidelityMenu,
    fidelity_features,
    format_size,
    parse_size,
)
from mixsurrogate.runs.log import RunsLog

from builders import fidelity_log


@pytest.mark.parametrize(
    ("text", "value"),
    [("20M", 2e7), ("1.2B", 1.2e9), ("1.2b", 1.2e9), ("3e9", 3e9), ("500K", 5e5), ("2T", 2e12),
     ("1G", 1e9), (" 60M ", 6e7), ("0.4B", 4e8)],
)  # fmt: skip
def test_parse_size(text, value):
    assert parse_size(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["20X", "M", "", "-5M", "0", "0M", "1.2.3B", "abc", "nan", "inf"])
def test_parse_size_refuses_bad_input_with_one_line(text):
    with pytest.raises(MixsurrogateError) as err:
        parse_size(text)
    assert "\n" not in str(err.value)


def test_format_size_round_trips():
    for value in (2e7, 1.2e9, 6e7, 25e9, 5e5):
        assert parse_size(format_size(value)) == pytest.approx(value)


def test_fidelity_parse_and_cost():
    f = Fidelity.parse("60M:1.2B")
    assert (f.params, f.tokens) == (6e7, 1.2e9)
    assert str(f) == "60M:1.2B"
    assert CostModel().flops(f) == pytest.approx(6 * 6e7 * 1.2e9)
    assert CostModel(factor=8, overhead=1e15).flops(f) == pytest.approx(8 * 6e7 * 1.2e9 + 1e15)
    with pytest.raises(MixsurrogateError, match="SIZE:TOKENS"):
        Fidelity.parse("60M")
    with pytest.raises(MixsurrogateError):
        CostModel(factor=0)


def test_menu_target_may_exceed_every_item_but_no_item_may_exceed_the_target():
    menu = FidelityMenu.parse("20M:0.4B,60M:1.2B,150M:3B", "1B:20B")
    assert [str(f) for f in menu.items] == ["20M:400M", "60M:1.2B", "150M:3B", "1B:20B"]
    assert menu.target == Fidelity(1e9, 2e10)
    small = FidelityMenu.parse("20M:0.4B", "1B:20B", include_target=False)
    assert small.target not in small.items
    with pytest.raises(MixsurrogateError, match="larger than the target"):
        FidelityMenu.parse("20M:0.4B,2B:1B", "1B:20B")
    with pytest.raises(MixsurrogateError, match="larger than the target"):
        FidelityMenu.parse("20M:40B", "1B:20B")  # more tokens than the target
    with pytest.raises(MixsurrogateError, match="bad model size"):
        FidelityMenu.parse("20Q:0.4B", "1B:20B")
    with pytest.raises(MixsurrogateError, match="bad token count"):
        FidelityMenu.parse("20M:0.4B", "1B:-2B")


def test_fidelity_features_are_log10_and_validated():
    log = fidelity_log([1e6, 6e7, 1e9], [1e9, 1e9, 25e9])
    np.testing.assert_allclose(
        fidelity_features(log), [[6, 9], [np.log10(6e7), 9], [9, np.log10(25e9)]]
    )
    for bad in (0, np.nan, -1, "big"):
        with pytest.raises(MixsurrogateError, match="run r1: params") as err:
            fidelity_features(fidelity_log([1e6, bad, 1e9]))
        assert "positive finite" in str(err.value)
    frame = fidelity_log([1e6] * 3).frame.drop(columns="tokens")
    with pytest.raises(MixsurrogateError, match="no 'tokens' column"):
        fidelity_features(RunsLog(frame))
