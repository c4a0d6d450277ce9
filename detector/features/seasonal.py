"""Seasonal expectations of a key's call count: hour of day times day of week, with its spread.

A key's rate at one hour of one day is its hour-of-day rate (the busiest of that hour and its two
neighbours, so a job that starts a little early or late is not news) times a day-of-week factor
(how busy this weekday is against the average day: rest days are quiet). Both are shrunk toward
the key's overall rate by a prior worth ``prior_hours`` hours of evidence (empirical Bayes), so a
key with one week of history expects little on a rest day or at night without expecting nothing,
and one with months of history is judged by its own pattern. Over-dispersion (bursty traffic,
batch jobs, days busier than others) is estimated around that model, per hour of day, by the
method of moments: a key whose counts swing widely needs more evidence before a rise is news.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import betainc, gammainc

from detector.features.profiles import HOURS_PER_WEEK, WEEK_OFFSET_HOURS, KeyProfile

_DAYS = 7
FloatArray = NDArray[np.float64]
_OFFSET = WEEK_OFFSET_HOURS


@dataclass(slots=True, frozen=True)
class Expectation:
    """Expected calls per window, how over-dispersed they are, and how much history stands behind it."""

    mean: float
    dispersion: float  # phi in var = mean + phi * mean**2, window to window
    level_spread: float  # theta: squared coefficient of variation of whole hours against the model
    weeks: int  # times this day of the week was seen
    days: int  # days of history

    def describe(self) -> str:
        """How the expectation was learned, in words.

        >>> Expectation(2.0, 0.1, 0.05, 1, 7).describe()
        'this weekday seen once in 7 days of history'
        """
        weeks = "once" if self.weeks == 1 else f"{self.weeks} times"
        return f"this weekday seen {weeks} in {self.days} days of history"


_BUCKETS = (
    np.arange(_DAYS * 24).reshape(_DAYS, 24) - WEEK_OFFSET_HOURS
) % HOURS_PER_WEEK  # abs hour mod week


def _seen(first_ts: float, last_ts: float, covered: list[float] | None = None) -> FloatArray:
    """Hours of history at each (day of week, hour of day), Monday first; partial end hours in part.

    At most as many as the logs ``covered`` (per hour of the week), when that is known.

    >>> seen = _seen(0.0, 2 * 86400.0 + 1800.0)  # Thursday 00:00 to Saturday 00:30
    >>> float(seen[3][0]), float(seen[4][23]), float(seen[5][0]), float(seen[6][0])
    (1.0, 1.0, 0.5, 0.0)
    >>> float(_seen(0.0, 2 * 86400.0 + 1800.0, [0.5] * 168)[3][0])
    0.5
    """
    start_h, end_h = int(first_ts // 3600), int(last_ts // 3600) + 1
    out: FloatArray = (
        ((end_h - 1 - _BUCKETS) // HOURS_PER_WEEK - (start_h - 1 - _BUCKETS) // HOURS_PER_WEEK).astype(float)
        if end_h > start_h
        else np.zeros((_DAYS, 24))
    )
    for ts, part in ((first_ts, 1.0 - first_ts % 3600 / 3600), (last_ts, last_ts % 3600 / 3600)):
        day, hour = divmod(int((ts // 3600 + WEEK_OFFSET_HOURS) % HOURS_PER_WEEK), 24)
        out[day, hour] -= 1.0 - part
    if covered is not None:
        out = np.minimum(out, np.asarray(covered, dtype=float).reshape(_DAYS, 24))
    return out


def caller_expectation(
    counts: list[float],
    last_ts: float,
    ts: float,
    window_seconds: float,
    prior_hours: float,
    covered: list[float] | None,
    key: Expectation,
) -> Expectation:
    """What one caller is expected to make on a key per window at ``ts``, from its own counters.

    ``counts`` holds the caller's calls on the key per hour of day (24), per day of week (7) and
    when it first called (see :func:`detector.features.learning.learn_window`). Its spread is
    the key's, at least.

    >>> counts = [0.0] * 24 + [0.0] * 7 + [0.0]
    >>> for hour in range(9, 17):
    ...     counts[hour] = 5 * 60.0  # five weekdays of 60 calls an hour, 09:00 to 17:00
    >>> for day in range(5):
    ...     counts[24 + day] = 8 * 60.0
    >>> key = Expectation(3.0, 0.0, 0.05, 1, 7)
    >>> week = 7 * 86400.0
    >>> monday_10 = caller_expectation(counts, week, week + 4 * 86400.0 + 10 * 3600, 60.0, 0.25, None, key)
    >>> sunday_10 = caller_expectation(counts, week, week + 3 * 86400.0 + 10 * 3600, 60.0, 0.25, None, key)
    >>> round(monday_10.mean, 2), round(sunday_10.mean, 3)
    (0.97, 0.007)
    """
    per_hour = 3600.0 / window_seconds
    seen = _seen(counts[31], last_ts, covered if covered and any(covered) else None)
    factors, hourly = fit_day_hour(counts[:24], counts[24:31], seen, prior_hours)
    day, hour = divmod(int((ts // 3600 + WEEK_OFFSET_HOURS) % HOURS_PER_WEEK), 24)
    near = max(hourly[hour - 1], hourly[hour], hourly[(hour + 1) % 24])
    mean = float(near * factors[day] / per_hour)
    return Expectation(mean, key.dispersion, key.level_spread, key.weeks, key.days)


def expectation(
    profile: KeyProfile,
    ts: float,
    window_seconds: float,
    prior_hours: float,
    covered: list[float] | None = None,
) -> Expectation:
    """Expected calls per window at ``ts`` for a key, from its learned counters.

    >>> p = KeyProfile(first_ts=0.0, last_ts=7 * 86400.0 - 1)
    >>> for day in range(7):  # 60 calls an hour from 09:00 to 16:59 UTC, on weekdays only
    ...     for hour in range(9, 17):
    ...         how = (day * 24 + hour + WEEK_OFFSET_HOURS) % HOURS_PER_WEEK
    ...         p.how_counts[how] += 60.0 if (day + 3) % 7 < 5 else 0.0
    >>> weekday = expectation(p, 9 * 3600.0, 60.0, 1.0)  # Thursday 09:00
    >>> saturday = expectation(p, (2 * 24 + 9) * 3600.0, 60.0, 1.0)
    >>> night = expectation(p, 3 * 3600.0, 60.0, 1.0)
    >>> round(weekday.mean, 2), round(saturday.mean, 2), round(night.mean, 3)
    (1.0, 0.02, 0.022)
    """
    start_h, end_h = int(profile.first_ts // 3600), int(profile.last_ts // 3600) + 1
    per_hour = 3600.0 / window_seconds
    seen = _seen(profile.first_ts, profile.last_ts, covered if covered and any(covered) else None)
    factors, hourly = _factors(profile.how_counts, seen, prior_hours)
    how = int((ts // 3600 + WEEK_OFFSET_HOURS) % HOURS_PER_WEEK)
    day, hour = divmod(how, 24)
    near = max(hourly[hour - 1], hourly[hour], hourly[(hour + 1) % 24])
    spread, level = _dispersion(profile, seen, factors, hourly, hour, per_hour)
    weeks = int(max(seen[day]) + 0.5)
    prior_spread = level + _day_spread(factors, seen) / max(weeks, 1)
    rate, left = _own_hours(profile.how_counts, seen, day, hour, near * factors[day], prior_spread)
    days = max(end_h - start_h, 0) // 24
    return Expectation(float(rate / per_hour), float(spread), float(left), weeks, days)


def _own_hours(
    counts: list[float], seen: FloatArray, day: int, hour: int, model: float, spread: float
) -> tuple[float, float]:
    """Calls per hour expected at this weekday and hour: the model's, updated by what those hours did.

    The day-by-hour model is a prior (a gamma with the model's rate and ``spread`` as its squared
    coefficient of variation); the busiest of this hour and its neighbours on this weekday in
    history is the evidence (Poisson). The posterior mean is the expectation and its squared
    coefficient of variation the spread left: a daily job that also runs on quiet days, or a
    quiet afternoon on a rest day whose morning was busy, is expected as it was seen, more
    firmly with every week of history.

    >>> seen = np.ones((7, 24))
    >>> counts = [0.0] * 168
    >>> rate, left = _own_hours(counts, seen, 6, 14, 42.0, 0.45)  # the model says 42 an hour; none seen
    >>> round(rate, 2), round(left, 2)
    (2.11, 0.45)
    >>> counts[6 * 24 + 14] = 7.0  # 7 calls in that hour of the one Sunday seen
    >>> rate, left = _own_hours(counts, seen, 6, 14, 42.0, 0.45)
    >>> round(rate, 2), round(left, 3)
    (8.76, 0.108)
    """
    best_rate, calls, hours = -1.0, 0.0, 0.0
    for h in (hour - 1, hour, hour + 1):
        h %= 24
        t = float(seen[day][h])
        if t > 0 and counts[day * 24 + h] / t > best_rate:
            best_rate, calls, hours = counts[day * 24 + h] / t, counts[day * 24 + h], t
    shape = 1.0 / max(spread, 1e-3)
    return (shape + calls) / (shape / max(model, 1e-6) + hours), 1.0 / (shape + calls)


def _day_spread(factors: list[float], seen: FloatArray) -> float:
    """How far one weekday's level is from its factor when that factor rests on few of its days.

    A day factor learned from one Saturday is that Saturday's level; the next one may differ as
    much as days differ from each other. The squared coefficient of variation of the seen days'
    factors stands for that, divided by how many times the day was seen: a key with months of
    history knows its Saturdays, one with a week only guesses.

    >>> week = np.ones((7, 24))
    >>> round(_day_spread([1.0] * 7, week), 3), round(_day_spread([1.2] * 5 + [0.5] * 2, week), 3)
    (0.0, 0.1)
    """
    days = [f for f, hours in zip(factors, seen.sum(axis=1).tolist(), strict=True) if hours > 0]
    mean = sum(days) / len(days) if len(days) >= 2 else 0.0
    if mean <= 0:
        return 0.0
    return sum((f - mean) ** 2 for f in days) / len(days) / mean**2


def _factors(counts: list[float], seen: FloatArray, prior: float) -> tuple[list[float], list[float]]:
    """Day-of-week factors (1 = an average day) and calls per hour of day on an average day."""
    by_day_hour = np.asarray(counts, dtype=float).reshape(_DAYS, 24)
    return fit_day_hour(by_day_hour.sum(axis=0).tolist(), by_day_hour.sum(axis=1).tolist(), seen, prior)


def fit_day_hour(
    hour_calls: list[float], day_calls: list[float], seen: FloatArray, prior: float
) -> tuple[list[float], list[float]]:
    """Day factors and hourly rates from calls per hour of day and per day of week.

    Fitted by alternating the two (a Poisson model with a day and an hour effect), so a day seen
    only in part is compared with what its own hours usually bring, not with whole days.
    """
    hours_seen = float(seen.sum())
    total = float(sum(day_calls))
    if hours_seen <= 0 or total <= 0:
        return [1.0] * _DAYS, [0.0] * 24
    mean = total / hours_seen  # calls per hour over the whole history
    by_hour, by_day = np.asarray(hour_calls, dtype=float), np.asarray(day_calls, dtype=float)
    factors = np.ones(_DAYS)
    hourly = np.zeros(24)
    for _ in range(3):
        hourly = (by_hour + prior * mean) / (factors @ seen + prior)
        factors = (by_day + prior * mean) / (seen @ hourly + prior * mean)
    return factors.tolist(), hourly.tolist()


def _dispersion(
    profile: KeyProfile,
    seen: FloatArray,
    factors: list[float],
    hourly: list[float],
    hour: int,
    per_hour: float,
) -> tuple[float, float]:
    """Over-dispersion around the model at ``hour`` and its neighbours: window to window, hour to hour.

    Windows: var = m + phi m^2 per window. Hours: the count of a whole hour seen n times varies as
    E + theta E^2 / n around its expectation E, which is how far busy days stray from the pattern.
    """
    excess = squares = hour_excess = hour_squares = 0.0
    for h in (hour - 1, hour, (hour + 1) % 24):
        h %= 24
        for d in range(_DAYS):
            times = seen[d][h]
            windows = times * per_hour
            if windows <= 0:
                continue
            how = d * 24 + h
            expected = hourly[h] * factors[d] / per_hour
            calls, squares_sum = profile.how_counts[how], profile.how_sumsq[how]
            around = squares_sum / windows - 2.0 * expected * calls / windows + expected * expected
            excess += windows * (around - expected)
            squares += windows * expected * expected
            if calls:  # an hour without any call says nothing about how far busy hours stray
                total = expected * windows
                hour_excess += (calls - total) ** 2 - total
                hour_squares += total * total / times
    phi = max(excess / squares, 0.0) if squares > 0 else 0.0
    theta = max(hour_excess / hour_squares, 0.0) if hour_squares > 0 else 0.0
    return phi, theta


def run_tail(
    calls: float, expected: float, windows: int, expect: Expectation, spread_floor: float = 0.0
) -> float:
    """Chance of at least ``calls`` in ``windows`` windows expecting ``expected``, given the key's spread.

    A negative binomial whose variance adds the window-to-window dispersion (which averages out
    over a long run) and the hour-to-hour level spread (which does not), at least ``spread_floor``:
    a key's few quiet hours of history cannot prove it steadier than that.

    >>> steady = Expectation(5.0, 0.0, 0.01, 1, 7)
    >>> f"{run_tail(600, 300, 60, steady):.1e}", f"{run_tail(320, 300, 60, steady):.2f}"
    ('1.6e-12', '0.28')
    >>> bursty = Expectation(5.0, 0.0, 0.5, 1, 7)
    >>> f"{run_tail(600, 300, 60, bursty):.2f}"
    '0.09'
    """
    count = math.floor(calls)
    if count <= expected or count < 1:
        return 1.0
    inverse_shape = max(expect.level_spread, spread_floor) + expect.dispersion / max(windows, 1)
    if inverse_shape <= 1e-9:
        return float(gammainc(count, expected))  # Poisson P(X >= count)
    shape = 1.0 / inverse_shape
    # Negative binomial P(X >= count) as a regularised incomplete beta (what nbinom.sf computes).
    return float(betainc(count, shape, expected / (shape + expected)))


def window_tail(count: float, expect: Expectation, mean: float) -> float:
    """Chance of at least ``count`` calls in one window expecting ``mean``, given the key's spread.

    >>> key = Expectation(2.0, 0.0, 0.05, 1, 7)
    >>> f"{window_tail(12, key, 2.0):.0e}", window_tail(1, key, 2.0) > 0.5
    ('9e-06', True)
    """
    return run_tail(count, mean, 1, expect)


def rise_evidence(count: float, expected: float, dispersion: float, rise: float) -> float:
    """Log-likelihood ratio of ``rise`` times the expected rate against the expected rate.

    A Poisson likelihood ratio, divided by the variance inflation of over-dispersed counts
    (quasi-likelihood), so bursty keys need more evidence for the same excess.

    >>> round(rise_evidence(6, 2.0, 0.0, 2.0), 3), round(rise_evidence(2, 2.0, 0.0, 2.0), 3)
    (2.159, -0.614)
    >>> round(rise_evidence(6, 2.0, 0.5, 2.0), 3)
    1.079
    """
    return (count * math.log(rise) - (rise - 1.0) * expected) / (1.0 + dispersion * expected)


@dataclass(slots=True)
class VolumeState:
    """A key's sequential test: its evidence, the open run, and its recent level."""

    last: float  # start of the last window judged
    score: float = 0.0  # CUSUM of the evidence for a rise
    calls: float = 0.0  # calls in the open run
    expected: float = 0.0  # expected calls over the same windows
    windows: int = 0  # windows in the open run
    recent_calls: float = 0.0  # exponentially weighted calls, for the level
    recent_expected: float = 0.0  # exponentially weighted seasonal expectation, for the level
    caller: str = ""  # main caller of the last alarming window, to find keys rising together
    reported: bool = False  # the open run has alarmed: only windows clearly above expectation extend it

    def close(self) -> None:
        """End the open run."""
        self.score = self.calls = self.expected = 0.0
        self.windows = 0
        self.reported = False

    def level(self, min_expected: float) -> float:
        """Recent calls over what the season expected (at least 1; 1 until enough is expected).

        >>> VolumeState(0.0, recent_calls=300.0, recent_expected=100.0).level(50.0)
        3.0
        >>> VolumeState(0.0, recent_calls=30.0, recent_expected=10.0).level(50.0)
        1.0
        """
        if self.recent_expected < min_expected:
            return 1.0
        return max(self.recent_calls / self.recent_expected, 1.0)

    def learn(self, calls: float, expected: float, gap: int, half_life: float) -> None:
        """Fold a window outside any run (and the empty windows before it) into the recent level."""
        decay = 0.5 ** ((gap + 1) / half_life)
        self.recent_calls = self.recent_calls * decay + calls
        self.recent_expected = self.recent_expected * decay + expected * (gap + 1)

    def to_list(self) -> list[float | str | bool]:
        """JSON form."""
        return [self.last, self.score, self.calls, self.expected, self.windows, self.recent_calls,
                self.recent_expected, self.caller, self.reported]  # fmt: skip
