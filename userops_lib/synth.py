"""A synthetic user-operations world whose truth we set, for testing that analyses recover it.

``make_world(users=N, seed=S)`` simulates a product over one year:

* **users** sign up uniformly over the year, with a channel, a platform and a country;
* **churn**: each user has a latent lifetime ``T`` (days since signup) from a Weibull
  proportional-hazards model, ``S(t | x) = exp(-(t / scale) ** shape * HR(x))`` with
  ``HR(x) = HR_channel * HR_platform * HR_country``; the user is active only before ``T``;
* **activity**: on each day before ``T`` (and before the snapshot) the user is active with
  probability ``daily_probability * weekday_multiplier`` (weekly seasonality); the signup day is
  always active; an active day logs one ``session`` event (the signup day a ``signup`` event);
* **purchases**: on an active day a user buys with a probability set by a latent value class
  (``high`` or ``regular``), with log-normal revenue;
* **campaign**: users still alive on the assignment day are randomised to ``control`` and two
  treatment arms; within the 14-day window after assignment, a user converts (makes a purchase) with
  probability ``control_conversion[class] + conversion_lift[arm][platform]``.

Every parameter, and the realised sizes, go to ``truth.json``; per-user latent values (lifetime,
value class) to ``truth_users.parquet`` (written by :mod:`userops_lib.synth_files`). The same seed gives
the same data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from userops_lib.synth_purchases import bgnbd_purchases
from userops_lib.synth_purchases import truth as store_truth

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class WorldParameters:
    """The true parameters of a synthetic world (all times in days)."""

    start: dt.date = dt.date(2025, 1, 1)
    days: int = 365
    channel: dict = field(
        default_factory=lambda: {
            "organic": (0.40, 1.0),
            "paid_search": (0.25, 1.5),
            "social": (0.20, 1.8),
            "referral": (0.15, 0.7),
        }
    )
    platform: dict = field(default_factory=lambda: {"ios": (0.35, 1.0), "android": (0.45, 1.2), "web": (0.20, 1.5)})
    country: dict = field(
        default_factory=lambda: {
            "US": (0.30, 1.0),
            "GB": (0.15, 1.0),
            "DE": (0.15, 1.0),
            "IN": (0.25, 1.0),
            "BR": (0.15, 1.3),
        }
    )
    weibull_shape: float = 0.8
    weibull_scale: float = 300.0
    daily_probability: float = 0.25
    weekday_multiplier: tuple = (0.9, 0.9, 0.9, 0.95, 1.05, 1.2, 1.1)
    high_value_share: float = 0.10
    purchase_probability: dict = field(default_factory=lambda: {"high": 0.25, "regular": 0.03})
    revenue_mean: dict = field(default_factory=lambda: {"high": 60.0, "regular": 25.0})
    revenue_sigma: float = 0.5
    campaign: str = "autumn_promo"
    assigned_day: int = 273
    window_days: int = 14
    arms: dict = field(default_factory=lambda: {"control": 1 / 3, "discount": 1 / 3, "reminder": 1 / 3})
    control_conversion: dict = field(default_factory=lambda: {"high": 0.40, "regular": 0.06})
    conversion_lift: dict = field(
        default_factory=lambda: {
            "discount": {"ios": 0.09, "android": 0.04, "web": 0.0},
            "reminder": {"ios": 0.03, "android": 0.01, "web": 0.0},
        }
    )
    # A product funnel on the signup day (off unless given, e.g. PRODUCT_FUNNEL): step 1 with
    # ``entry`` probability, then each next step with a probability that differs by platform.
    funnel: dict | None = None
    # Repeat purchases in a store whose process is BG/NBD with Gamma-Gamma spend (off unless given, e.g.
    # synth_purchases.STORE): a first order at signup, then :func:`synth_purchases.bgnbd_purchases`.
    store: dict | None = None

    @property
    def snapshot_at(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time()) + dt.timedelta(days=self.days)

    @property
    def assigned_at(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time()) + dt.timedelta(days=self.assigned_day)


PRODUCT_FUNNEL = {
    "steps": ["view", "add_to_cart", "checkout", "order"],
    "entry": 0.8,
    "step_probability": {"ios": [0.45, 0.70, 0.60], "android": [0.35, 0.60, 0.50], "web": [0.25, 0.50, 0.70]},
    "mean_minutes_between_steps": 30.0,
}


def _funnel_events(p: WorldParameters, seed: int, user_id, signup_at, platform) -> pd.DataFrame:
    """The product funnel's events (its own random stream: the rest of the world is the same with or
    without it). Steps follow each other by exponential gaps, all on the signup day or just after."""
    spec = p.funnel
    assert spec is not None
    rng = np.random.default_rng([seed, 7])
    n = len(user_id)
    reached = rng.random(n) < spec["entry"]
    at = pd.Series(signup_at) + pd.to_timedelta(rng.integers(0, 3_600, size=n), unit="s")
    gap = spec["mean_minutes_between_steps"] * 60
    frames = []
    for k, name in enumerate(spec["steps"]):
        if k:
            chance = np.array([spec["step_probability"][pl][k - 1] for pl in platform])
            reached = reached & (rng.random(n) < chance)
            at = at + pd.to_timedelta(rng.exponential(gap, size=n).round(), unit="s")
        frames.append(pd.DataFrame({"user_id": user_id[reached], "event_at": at[reached].to_numpy(), "event": name}))
    return pd.concat(frames, ignore_index=True)


def _choice(rng: np.random.Generator, levels: dict, size: int) -> np.ndarray:
    names = list(levels)
    shares = np.array([levels[n][0] for n in names])
    return np.array(names, dtype=object)[rng.choice(len(names), size=size, p=shares / shares.sum())]


def make_world(*, users: int = 10_000, seed: int = 42, params: WorldParameters | None = None) -> dict:
    """Simulate the world; returns the tables (DataFrames) and the truth (a JSON-ready dict)."""
    if users < 10:
        raise ValueError("a synthetic world needs at least 10 users")
    p = params or WorldParameters()
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(p.start)
    n = users
    user_id = np.arange(1, n + 1)
    signup_day = rng.integers(0, p.days, size=n)
    signup_seconds = rng.integers(0, 86_400, size=n)
    signup_at = start + pd.to_timedelta(signup_day, unit="D") + pd.to_timedelta(signup_seconds, unit="s")
    channel = _choice(rng, p.channel, n)
    platform = _choice(rng, p.platform, n)
    country = _choice(rng, p.country, n)
    hazard_ratio = (
        np.array([p.channel[c][1] for c in channel])
        * np.array([p.platform[c][1] for c in platform])
        * np.array([p.country[c][1] for c in country])
    )
    lifetime = p.weibull_scale * (rng.exponential(size=n) / hazard_ratio) ** (1 / p.weibull_shape)
    high_value = rng.random(n) < p.high_value_share
    value_class = np.where(high_value, "high", "regular")

    # Days each user could be seen on: day 0 (signup) up to the lifetime and the snapshot.
    observable = p.days - signup_day  # calendar days from the signup day to the snapshot
    alive_days = np.minimum(np.ceil(lifetime).astype(int), observable)
    alive_days = np.maximum(alive_days, 1)
    owner = np.repeat(np.arange(n), alive_days)
    first = np.repeat(np.cumsum(alive_days) - alive_days, alive_days)
    day = np.arange(owner.size) - first
    calendar_day = signup_day[owner] + day
    weekday = (start.dayofweek + calendar_day) % 7
    multiplier = np.asarray(p.weekday_multiplier)[weekday]
    active = (day == 0) | (rng.random(owner.size) < p.daily_probability * multiplier)
    owner, day, calendar_day = owner[active], day[active], calendar_day[active]
    seconds = np.where(day == 0, signup_seconds[owner], rng.integers(0, 86_400 - 3_600, size=owner.size))
    event_at = start + pd.to_timedelta(calendar_day, unit="D") + pd.to_timedelta(seconds, unit="s")
    sessions = pd.DataFrame(
        {
            "user_id": user_id[owner],
            "event_at": event_at,
            "event": np.where(day == 0, "signup", "session"),
            "revenue": np.nan,
        }
    )

    buy = rng.random(owner.size) < np.where(
        high_value[owner], p.purchase_probability["high"], p.purchase_probability["regular"]
    )
    purchase_owner = owner[buy]
    purchases = pd.DataFrame(
        {
            "user_id": user_id[purchase_owner],
            "event_at": event_at[buy] + pd.to_timedelta(rng.integers(60, 3_600, size=buy.sum()), unit="s"),
            "event": "purchase",
            "revenue": _revenue(rng, p, high_value[purchase_owner]),
        }
    )
    campaign_day = calendar_day[buy]
    in_window = (campaign_day >= p.assigned_day) & (campaign_day < p.assigned_day + p.window_days)

    # The campaign: users alive on the assignment day, randomised; conversion in the window is set.
    eligible = np.flatnonzero((signup_day < p.assigned_day) & (signup_day + lifetime > p.assigned_day))
    arm_names = list(p.arms)
    arm = np.array(arm_names, dtype=object)[
        rng.choice(len(arm_names), size=eligible.size, p=np.array(list(p.arms.values())))
    ]
    assignments = pd.DataFrame(
        {"user_id": user_id[eligible], "campaign": p.campaign, "arm": arm, "assigned_at": pd.Timestamp(p.assigned_at)}
    )
    assigned = np.zeros(n, dtype=bool)
    assigned[eligible] = True
    purchases = purchases[~(in_window & assigned[purchase_owner])]  # replaced by the set conversion below
    base = np.where(high_value[eligible], p.control_conversion["high"], p.control_conversion["regular"])
    lift = np.array([p.conversion_lift.get(a, {}).get(pl, 0.0) for a, pl in zip(arm, platform[eligible], strict=True)])
    converts = rng.random(eligible.size) < base + lift
    converter = eligible[converts]
    # The conversion falls on a day the user is still alive, inside the window.
    alive_in_window = np.minimum(
        p.window_days, np.ceil(signup_day[converter] + lifetime[converter] - p.assigned_day).astype(int)
    )
    alive_in_window = np.clip(alive_in_window, 1, p.window_days)
    offset = np.floor(rng.random(converter.size) * alive_in_window).astype(int)
    conversion_at = (
        pd.Timestamp(p.assigned_at)
        + pd.to_timedelta(offset, unit="D")
        + pd.to_timedelta(rng.integers(0, 86_400 - 3_600, size=converter.size), unit="s")
    )
    conversions = pd.DataFrame(
        {
            "user_id": user_id[converter],
            "event_at": conversion_at,
            "event": "purchase",
            "revenue": _revenue(rng, p, high_value[converter]),
        }
    )
    visits = conversions.assign(
        event="session", revenue=np.nan, event_at=conversions.event_at - pd.Timedelta(minutes=5)
    )

    parts = [sessions, purchases, visits, conversions]
    if p.funnel:
        parts.append(_funnel_events(p, seed, user_id, signup_at, platform))
    if p.store:  # its own random stream, like the funnel's
        first = pd.Series(np.asarray(signup_at), index=user_id)
        parts.append(bgnbd_purchases(first, pd.Timestamp(p.snapshot_at), np.random.default_rng([seed, 11]), p.store))
    events = pd.concat(parts, ignore_index=True)
    events = events[events.event_at < pd.Timestamp(p.snapshot_at)]
    events = events.sort_values(["event_at", "user_id", "event"], kind="stable").reset_index(drop=True)
    users_frame = pd.DataFrame(
        {"user_id": user_id, "signup_at": signup_at, "channel": channel, "platform": platform, "country": country}
    )
    truth_users = pd.DataFrame(
        {
            "user_id": user_id,
            "lifetime_days": lifetime,
            "hazard_ratio": hazard_ratio,
            "value_class": value_class,
            "observable_days": observable.astype(float),
            "churned_by_snapshot": lifetime < observable,
        }
    )
    truth = _truth(
        p,
        seed=seed,
        users=users_frame,
        truth_users=truth_users,
        assignments=assignments,
        eligible_platform=platform[eligible],
        events=events,
    )
    return {
        "users": users_frame,
        "events": events,
        "assignments": assignments,
        "truth_users": truth_users,
        "truth": truth,
    }


def _revenue(rng: np.random.Generator, p: WorldParameters, high: np.ndarray) -> np.ndarray:
    mean = np.where(high, p.revenue_mean["high"], p.revenue_mean["regular"])
    # log-normal with the stated mean: mu = log(mean) - sigma^2 / 2
    raw = rng.lognormal(mean=np.log(mean) - p.revenue_sigma**2 / 2, sigma=p.revenue_sigma)
    return np.round(raw, 2)


def _truth(p: WorldParameters, *, seed, users, truth_users, assignments, eligible_platform, events) -> dict:
    attribute = {
        name: {
            "reference": next(iter(levels)),
            "share": {k: v[0] for k, v in levels.items()},
            "hazard_ratio": {k: v[1] for k, v in levels.items()},
        }
        for name, levels in (("channel", p.channel), ("platform", p.platform), ("country", p.country))
    }
    platform_share = pd.Series(eligible_platform).value_counts(normalize=True).to_dict()
    basket = p.high_value_share * p.revenue_mean["high"] + (1 - p.high_value_share) * p.revenue_mean["regular"]
    lift_overall = {
        arm: sum(platform_share.get(pl, 0.0) * lift for pl, lift in by.items()) for arm, by in p.conversion_lift.items()
    }
    out = {
        "generator": "userops synth",
        "seed": seed,
        "users": int(len(users)),
        "start": p.start.isoformat(),
        "snapshot_at": p.snapshot_at.isoformat(),
        "days": p.days,
        "attributes": attribute,
        "churn": {
            "model": "Weibull proportional hazards: S(t|x) = exp(-(t/scale)^shape * HR(x)), t in days since signup",
            "time_unit": "days",
            "shape": p.weibull_shape,
            "scale": p.weibull_scale,
            "hazard_ratio_is_product_of": ["channel", "platform", "country"],
            "note": "a user is active only before their lifetime; users alive at the snapshot are censored",
        },
        "activity": {
            "daily_probability": p.daily_probability,
            "weekday_multiplier": dict(zip(WEEKDAYS, p.weekday_multiplier, strict=True)),
            "note": "signup day always active; each later day before the lifetime active with "
            "probability daily_probability * weekday_multiplier",
        },
        "value": {
            "high_value_share": p.high_value_share,
            "purchase_probability_per_active_day": p.purchase_probability,
            "revenue_mean": p.revenue_mean,
            "revenue_sigma_log": p.revenue_sigma,
        },
        "campaign": {
            "name": p.campaign,
            "assigned_at": p.assigned_at.isoformat(),
            "eligible": "users signed up before the assignment day and still alive on it",
            "arms": list(p.arms),
            "control": "control",
            "allocation": p.arms,
            "window_days": p.window_days,
            "outcome": "converted: at least one purchase in [assigned_at, assigned_at + window_days)",
            "segment_by": "platform",
            "control_conversion": p.control_conversion,
            "conversion_lift": p.conversion_lift,
            "conversion_lift_overall": lift_overall,
            "revenue_lift_per_user": {
                arm: {pl: lift * basket for pl, lift in by.items()} for arm, by in p.conversion_lift.items()
            },
        },
        "realised": {
            "users_by": {
                name: users[name].value_counts().sort_index().to_dict() for name in ("channel", "platform", "country")
            },
            "high_value_users": int((truth_users.value_class == "high").sum()),
            "churned_by_snapshot": int(truth_users.churned_by_snapshot.sum()),
            "assigned_by_arm": assignments.arm.value_counts().sort_index().to_dict(),
            "events": int(len(events)),
            "events_by_name": events.event.value_counts().sort_index().to_dict(),
        },
    }
    if p.funnel:
        out["funnel"] = {
            **p.funnel,
            "definition": "step k follows step k-1 with step_probability[platform][k-2]; all on the signup day",
        }
    if p.store:
        out["store"] = store_truth(p.store)
    return out


def implied_retention(truth: dict, *, period: str = "day", periods=range(1, 31)) -> pd.Series:
    """The 'on' retention curve the model implies for first-time cohorts: P(active in period k).

    Averages over the attribute mix (``truth['attributes']`` shares) and, for weeks, over the signup
    weekday (uniform within a complete week). Day k (k >= 1) is active when the user is alive
    (k < lifetime) and active that day; a week is active when any of its days is. The campaign's
    extra visits (a few hundred user-days) are left out.
    """
    if period not in ("day", "week"):
        raise ValueError("implied retention is worked out for day and week periods")
    shape, scale = truth["churn"]["shape"], truth["churn"]["scale"]
    p = truth["activity"]["daily_probability"]
    multiplier = np.array([truth["activity"]["weekday_multiplier"][d] for d in WEEKDAYS])
    mix = [(1.0, 1.0)]
    for attribute in truth["churn"]["hazard_ratio_is_product_of"]:
        spec = truth["attributes"][attribute]
        mix = [(w * spec["share"][level], hr * spec["hazard_ratio"][level]) for w, hr in mix for level in spec["share"]]
    weights = np.array([w for w, _ in mix])
    ratios = np.array([hr for _, hr in mix])

    def alive_beyond(days: np.ndarray) -> np.ndarray:
        """P(lifetime > d) for each day d, averaged over the mix (rows: days)."""
        days = np.maximum(days, 0.0)
        return np.exp(-np.outer((days / scale) ** shape, ratios)) @ weights

    out = {}
    for k in periods:
        if period == "day":
            # Signup weekdays are near uniform, and the multipliers average 1.
            out[k] = p * multiplier.mean() * alive_beyond(np.array([float(k)]))[0]
            continue
        total = 0.0
        for signup_weekday in range(7):
            days = np.arange(7 * k - signup_weekday, 7 * k - signup_weekday + 7, dtype=float)
            quiet = 1 - p * multiplier[(signup_weekday + days.astype(int)) % 7]
            survival = np.exp(-np.outer((days / scale) ** shape, ratios))  # P(T > d) per class
            # P(no activity) = sum over j of P(exactly the first j days alive) * prod of their quiet chances.
            alive = np.vstack([np.ones(len(ratios)), survival, np.zeros(len(ratios))])
            prefix = np.concatenate([[1.0], np.cumprod(quiet)])
            no_activity = ((alive[:-1] - alive[1:]) * prefix[:, None]).sum(axis=0) @ weights
            total += (1 - no_activity) / 7
        out[k] = total
    return pd.Series(out, name="retention").rename_axis("period")
