"""Titles of the shipped rule pack and subject industries, marked so the catalogs translate them.

A rule's YAML carries its title in English; the page shows it through the catalog. A test
fails when a loaded rule's title has no Chinese translation, so a new rule cannot slip in
untranslated.
"""

from __future__ import annotations

from web.i18n import N_

RULE_TITLES = (
    N_("PM2.5 24-hour mean above the grade II limit"),
    N_("PM10 24-hour mean above the grade II limit"),
    N_("PM2.5 hourly mean above 115 μg/m³ (early warning)"),
    N_("PM10 hourly mean above 250 μg/m³ (early warning)"),
    N_("Combustible gas at or above 25 %LEL (first-level alarm)"),
    N_("Combustible gas at or above 50 %LEL (second-level alarm)"),
    N_("Wastewater outlet monitor sends no data"),
    N_("Stack monitor silent during production hours"),
    N_("COD value unchanged for two hours (possible data tampering)"),
    N_("Stack SO2 value unchanged for two hours (possible data tampering)"),
    N_("Production running while the treatment facility is off"),
    N_("Tank temperature above its design limit"),
    N_("Tank pressure above its design limit"),
    N_("Tank level above the high-level alarm"),
    N_("Tank level rising faster than 5 % per minute"),
    N_("Smoke or fire seen (open burning)"),
    N_("Fire seen at a hazardous chemicals site"),
    N_("Person in the tank farm at night"),
    N_("Camera covered, defocused, moved or blinded"),
    N_("COD hourly mean above the discharge permit limit"),
    N_("Ammonia nitrogen hourly mean above the discharge permit limit"),
    N_("COD reading twice the permit limit for 10 minutes"),
    # The pack as reviewed against the law in force (2026-12); the titles above stay for
    # clues raised before it.
    N_("PM2.5 24-hour mean above the grade II limit (area class 2)"),
    N_("PM2.5 24-hour mean above the grade I limit (area class 1)"),
    N_("PM10 24-hour mean above the grade II limit (area class 2)"),
    N_("PM10 24-hour mean above the grade I limit (area class 1)"),
    N_("PM2.5 hourly mean above 115 μg/m³ (early warning, not a legal limit)"),
    N_("PM10 hourly mean above 250 μg/m³ (early warning, not a legal limit)"),
    N_("COD unchanged over five analyser samples (possible data tampering)"),
    N_("Smoke or fire seen (open burning of straw)"),
)

INDUSTRIES = (
    N_("hazardous_chemicals"),
    N_("chemicals"),
    N_("wastewater"),
    N_("power"),
    N_("construction"),
    N_("food"),
    N_("mining"),
    N_("medical"),
)
