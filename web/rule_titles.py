"""Titles and summaries of the shipped rule pack and subject industries, marked so the catalogs
translate them.

A rule's YAML carries its title in English; the page shows it through the catalog. A test
fails when a loaded rule's title has no Chinese translation, so a new rule cannot slip in
untranslated.
"""

# ruff: noqa: E501 - each summary is one catalog key, equal to its rule's YAML text

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

# What each rule of the shipped pack checks (its YAML `description`), shown on the rules page
# and under each clue; a test fails when a loaded rule has none or it has no Chinese.
RULE_SUMMARIES = (
    N_(
        "Daily mean of PM2.5 at an air station in an area of class 2, from at least 20 valid hourly means, above the grade II limit in force that day (60 μg/m³ until 2030, then 50)."
    ),
    N_(
        "Daily mean of PM2.5 at an air station in an area of class 1, from at least 20 valid hourly means, above the grade I limit in force that day (25 μg/m³ from 2026-03-01)."
    ),
    N_(
        "Daily mean of PM10 at an air station in an area of class 2, from at least 20 valid hourly means, above the grade II limit of 150 μg/m³."
    ),
    N_(
        "Daily mean of PM10 at an air station in an area of class 1, from at least 20 valid hourly means, above the grade I limit of 50 μg/m³."
    ),
    N_(
        "Hourly mean of PM2.5 at an air station above 115 μg/m³; clears below 75. An early warning, not a legal limit."
    ),
    N_(
        "Hourly mean of PM10 at an air station above 250 μg/m³; clears below 150. An early warning, not a legal limit."
    ),
    N_("A combustible gas detector reads 25 %LEL or more; clears below 20 %LEL."),
    N_("A combustible gas detector reads 50 %LEL or more; clears below 40 %LEL."),
    N_("No data from a wastewater outlet's online monitor for 30 minutes."),
    N_(
        "No data from a stack monitor for 15 minutes during production hours (Monday to Saturday, 07:00–22:00)."
    ),
    N_(
        "The COD analyser reports the same value over five of its own samples (8 hours at least): possible data tampering."
    ),
    N_(
        "The stack's SO2 value does not change for two hours (at least 30 readings): possible data tampering."
    ),
    N_(
        "Production equipment draws more than 30 kW while the treatment facility draws less than 5 kW, for 10 minutes."
    ),
    N_("A tank's temperature is above its design limit for 30 seconds; clears below 95 % of it."),
    N_("A tank's pressure is above its design limit for 10 seconds; clears below 95 % of it."),
    N_("A tank's level reaches its high-level alarm for 30 seconds; clears below 97 % of it."),
    N_("A tank's level rises faster than 5 % per minute for 2 minutes."),
    N_(
        "A burning-watch camera sees smoke or fire (score 0.6 or more) for 20 seconds; clears after 5 minutes without."
    ),
    N_(
        "A camera at a hazardous chemicals site sees fire for 5 seconds; clears after 2 minutes without."
    ),
    N_("A camera sees a person in the tank farm zone between 22:00 and 06:00 for 30 seconds."),
    N_("A camera is covered, defocused, moved or blinded for a minute."),
    N_("Hourly mean of COD at a wastewater outlet above the subject's discharge permit limit."),
    N_(
        "Hourly mean of ammonia nitrogen at a wastewater outlet above the subject's discharge permit limit."
    ),
    N_("A COD reading at a wastewater outlet stays above twice the permit limit for 10 minutes."),
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
