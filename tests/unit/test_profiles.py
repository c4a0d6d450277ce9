"""Profiles: their JSON form and idle eviction."""

from __future__ import annotations

import copy
import json

from helpers import DAY3, KEY_PROD

from detector.features.profiles import KeyProfile, PrincipalProfile, Profiles


def test_profiles_survive_json(history) -> None:
    profiles = copy.deepcopy(history.profiles)
    text = json.dumps(profiles.to_dict())
    back = Profiles.from_dict(json.loads(text))
    assert back.to_dict() == profiles.to_dict()
    assert back.keys == profiles.keys and back.principals == profiles.principals and back.org == profiles.org
    when = DAY3 + 10 * 3600
    assert back.keys[KEY_PROD].baseline(when, 60.0) == profiles.keys[KEY_PROD].baseline(when, 60.0)
    # The hourly cache of shares travels with the profile, so a reloaded model judges the same.
    assert back.keys[KEY_PROD].hour_of_day_shares() == profiles.keys[KEY_PROD].hour_of_day_shares()


def test_profile_json_form_keeps_the_share_cache_and_every_field() -> None:
    prof = KeyProfile(first_ts=1.0, last_ts=2.0)
    shares = prof.hour_of_day_shares()
    data = json.loads(json.dumps(prof.to_dict()))
    back = KeyProfile.from_dict(data)
    assert back == prof and back.shares_cache == prof.shares_cache
    assert back.hour_of_day_shares() == shares
    pp = PrincipalProfile(first_ts=1.0, last_ts=2.0, keys={"k": 1})
    assert PrincipalProfile.from_dict(json.loads(json.dumps(pp.to_dict()))) == pp


def test_evict_idle_forgets_only_the_idle() -> None:
    profiles = Profiles()
    profiles.keys["old"] = KeyProfile(first_ts=0.0, last_ts=100.0)
    profiles.keys["new"] = KeyProfile(first_ts=0.0, last_ts=5_000.0)
    profiles.principals["old"] = PrincipalProfile(first_ts=0.0, last_ts=100.0)
    assert profiles.evict_idle(now=5_000.0, idle_seconds=3_600.0) == 2
    assert set(profiles.keys) == {"new"} and not profiles.principals
