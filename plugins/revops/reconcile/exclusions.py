"""Exclusion rules for test, sandbox and internal records (`include/config/exclusions.yaml`)."""

from __future__ import annotations

import pandas as pd

from revops.configuration import read_config
from revops.reconcile.frames import casefolded, is_in


def prospect_exclusions(records: pd.DataFrame) -> pd.Series:
    """The first exclusion rule each identity record matches, or None."""
    rules = read_config("exclusions")["prospects"]
    # What follows the last "@", by a regex Arrow runs (`rsplit` ran in Python per address).
    domain = records["email_normalized"].str.replace(r"^.*@", "", regex=True)
    matched = pd.Series(None, index=records.index, dtype=object)
    for rule, spec in rules.items():
        hit = pd.Series(False, index=records.index)
        if "email_domains" in spec:
            hit |= domain.isin([d.casefold() for d in spec["email_domains"]]).fillna(False)
        for flag in spec.get("flags", []):
            hit |= records[flag].fillna(False).astype(bool)
        if "name_words" in spec:
            words = {w.casefold() for w in spec["name_words"]}
            for column in ("first_name", "last_name"):
                hit |= _folds_to_one_of(records[column], words)
        matched = matched.where(matched.notna() | ~hit, rule)
    return matched


def _folds_to_one_of(names: pd.Series, words: set[str]) -> pd.Series:
    """Whether each name, stripped and case-folded, is one of `words`: folded once per distinct
    name, since `casefold` runs in Python and a million records repeat far fewer names."""
    stripped = names.astype("string").str.strip()
    matching = [name for name in stripped.dropna().unique() if name.casefold() in words]
    return is_in(stripped, pd.Series(matching, dtype=object))


def opportunity_exclusions(names: pd.Series) -> pd.Series:
    """The opportunity-name rule each opportunity matches, or None."""
    rules = read_config("exclusions")["opportunities"]
    lowered = casefolded(names.astype("string").fillna("").str.strip())
    matched = pd.Series(None, index=names.index, dtype=object)
    for rule, spec in rules.items():
        hit = pd.Series(False, index=names.index)
        for prefix in spec.get("name_prefixes", []):
            hit |= lowered.str.startswith(prefix.casefold())
        matched = matched.where(matched.notna() | ~hit, rule)
    return matched
