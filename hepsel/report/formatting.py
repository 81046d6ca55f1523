"""Numbers for people: rates in kHz or MHz, counts with separators, digits set by the uncertainty.

Every function returns plain text (``±``, ``<``, ASCII minus signs); the HTML
report escapes it and typesets intervals itself from :func:`percent_interval`'s
parts.
The number of decimals shown follows the Particle Data Group's rule: the
uncertainty keeps two significant digits when its three leading digits are
100 to 354, one when they are 355 to 949, and two after rounding up to the
next power of ten when they are 950 to 999; the value is rounded to the same
decimal place.
"""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = [
    "PercentInterval",
    "count",
    "decimals_for",
    "number",
    "percent",
    "percent_interval",
    "pvalue",
    "rate",
    "value_error",
]


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def decimals_for(err: float) -> int:
    """Decimal places that show ``err`` with the PDG's significant digits (negative: tens, hundreds, ...).

    Examples
    --------
    >>> decimals_for(0.000393), decimals_for(0.0032), decimals_for(20.46), decimals_for(0.0096)
    (4, 4, 0, 3)
    """
    if not err > 0 or not math.isfinite(err):
        msg = f"an uncertainty must be positive and finite, got {err!r}"
        raise ValueError(msg)
    exponent = math.floor(math.log10(err))
    # the three leading digits, 100 to 999 (rounded: 0.00355 must not read as 354.99...)
    lead = round(err / 10.0 ** (exponent - 2))
    if lead >= 1000:  # log10 rounded down at an exact power of ten
        exponent, lead = exponent + 1, 100
    return 1 - exponent if lead < 355 else -exponent


def _fixed(x: float, decimals: int, *, sign: bool = False) -> str:
    """``x`` with ``decimals`` places (rounded to tens, hundreds, ... when negative), separators from 10,000."""
    x = round(x, decimals)
    spec = ("+" if sign else "") + ("," if abs(x) >= 10_000 else "") + f".{max(decimals, 0)}f"
    text = format(x, spec)
    if text.lstrip("+-").strip("0.,") == "":
        text = text.replace("-", "").replace("+", "")  # no "-0.00", no "+0"
    return text


def value_error(value: float, err: float | None, *, sign: bool = False) -> str:
    """``value ± err``, both rounded where ``err``'s significant digits end.

    Without a (positive, finite) uncertainty the value keeps four significant digits.

    Examples
    --------
    >>> value_error(0.9856170, 0.000393)
    '0.9856 ± 0.0004'
    >>> value_error(714.6, 20.458)
    '715 ± 20'
    >>> value_error(-0.0312, 0.1298, sign=True)
    '-0.03 ± 0.13'
    """
    if not _finite(err) or not err or err <= 0:
        text = number(value)
        return "+" + text if sign and value > 0 else text
    d = decimals_for(err)
    return f"{_fixed(value, d, sign=sign)} ± {_fixed(err, d)}"


def number(x: float | None, digits: int = 4) -> str:
    """``x`` with ``digits`` significant digits but every digit of its integer part, no exponent in 1e-4 to 1e15.

    Examples
    --------
    >>> number(1538402.0), number(62430.1), number(186.3), number(0.014052), number(2.4e-6)
    ('1,538,402', '62,430', '186.3', '0.01405', '2.4e-06')
    >>> number(None), number(float("nan")), number(0.0)
    ('n/a', 'n/a', '0')
    """
    if not _finite(x):
        return "n/a"
    assert x is not None
    if x == 0:
        return "0"
    if abs(x) < 1e-4 or abs(x) >= 1e15:
        mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"
    magnitude = math.floor(math.log10(abs(x)))
    text = _fixed(x, max(digits - 1 - magnitude, 0))
    if "." in text:  # significant digits, not trailing zeros of a rounded figure
        text = text.rstrip("0").rstrip(".")
    return text


def count(n: float | None) -> str:
    """A number of events, candidates or entries, with thousands separators.

    Examples
    --------
    >>> count(13047), count(20000.0), count(None)
    ('13,047', '20,000', 'n/a')
    """
    return "n/a" if not _finite(n) else f"{round(n):,}"  # type: ignore[arg-type]


def rate(khz: float | str) -> str:
    """An event rate given in kHz, in kHz below 1 MHz and in MHz from there.

    Examples
    --------
    >>> rate(30000.0), rate("660"), rate(0.5), rate(1500)
    ('30 MHz', '660 kHz', '0.5 kHz', '1.5 MHz')
    """
    x = float(khz)
    if abs(x) >= 1000:
        return f"{x / 1000:g} MHz"
    return f"{x:g} kHz"


def percent(x: float | None, decimals: int = 1) -> str:
    """A fraction in percent ("n/a" if not computed).

    Examples
    --------
    >>> percent(0.5731), percent(None)
    ('57.3 %', 'n/a')
    """
    return "n/a" if not _finite(x) else f"{_fixed(100 * x, decimals)} %"  # type: ignore[operator]


def pvalue(p: float | None) -> str:
    """A p-value with two significant digits, "< 0.001" below that.

    Examples
    --------
    >>> pvalue(0.0281), pvalue(0.453), pvalue(2e-7)
    ('0.028', '0.45', '< 0.001')
    """
    if not _finite(p):
        return "n/a"
    assert p is not None
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


class PercentInterval(NamedTuple):
    """An efficiency and its interval in percent, as text: value, errors up and down (``""`` where zero)."""

    value: str
    up: str
    down: str

    @property
    def symmetric(self) -> bool:
        """Whether one ``±`` says it: both errors shown and equal."""
        return bool(self.up) and self.up == self.down

    def text(self) -> str:
        """Plain text: ``55.8 ± 0.4 %``, ``0.05 +0.10 -0.04 %``, ``100 -0.0012 %``.

        Examples
        --------
        >>> percent_interval(0.5575737, 0.5540218, 0.5611198).text()
        '55.8 ± 0.4 %'
        """
        if self.symmetric:
            return f"{self.value} ± {self.up} %"
        parts = [self.value]
        if self.up:
            parts.append(f"+{self.up}")
        if self.down:
            parts.append(f"-{self.down}")
        return " ".join(parts) + " %"


def percent_interval(
    value: float, low: float, high: float, *, max_decimals: int = 3
) -> PercentInterval:
    """An efficiency and its confidence interval in percent, digits set by the smaller error.

    Both errors are shown to the decimal place of the smaller nonzero one (at
    most ``max_decimals`` places; an error that rounds to zero there shows as
    ``<0.001``). Errors within 10 % of each other merge into one ``±`` (the
    larger). A value at 0 or 100 % (its interval one-sided) is shown as an
    integer.

    Examples
    --------
    >>> percent_interval(0.8533643, 0.8501907, 0.8564827)
    PercentInterval(value='85.34', up='0.32', down='0.32')
    >>> percent_interval(0.0004545, 0.0000751, 0.0014961)
    PercentInterval(value='0.05', up='0.10', down='0.04')
    >>> percent_interval(1.0, 0.9999988, 1.0)
    PercentInterval(value='100', up='', down='<0.001')
    >>> percent_interval(0.3207055, 0.3203283, 0.3210833)
    PercentInterval(value='32.07', up='0.04', down='0.04')
    """
    v, up, down = 100 * value, 100 * (high - value), 100 * (value - low)
    errs = [e for e in (up, down) if e > 0 and math.isfinite(e)]
    if not errs:
        return PercentInterval(_fixed(v, 1), "", "")
    d = min(decimals_for(min(errs)), max_decimals)
    if max(errs) <= 1.1 * min(errs) and len(errs) == 2:
        up = down = max(errs)

    def err(e: float) -> str:
        if not e > 0:
            return ""
        text = _fixed(e, d)
        return text if float(text.replace(",", "")) > 0 else f"<{10.0**-d:.{max(d, 0)}f}"

    shown = f"{round(v):d}" if value in (0.0, 1.0) else _fixed(v, d)
    return PercentInterval(shown, err(up), err(down))
