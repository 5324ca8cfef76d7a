"""Report text lives in two catalogues of the same keys; numbers and dates read as each language expects."""

import re
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT
from userops_lib import i18n, narrative

EN, ZH = i18n.catalogue("en"), i18n.catalogue("zh")


def _forms(text) -> list[str]:
    return list(text) if isinstance(text, tuple) else [text]


def test_english_and_chinese_hold_the_same_keys():
    assert EN.keys() == ZH.keys(), {"only in en": EN.keys() - ZH.keys(), "only in zh": ZH.keys() - EN.keys()}
    assert len(EN.keys()) > 150


def test_each_message_fills_the_same_fields_in_both_languages():
    """Every message (each plural form) is non-empty and asks for the same fields in English and Chinese; one
    test for the whole catalogue, listing every message that does not."""
    wrong = []
    for key in sorted(EN.keys()):
        en, zh = EN.messages[key], ZH.messages[key]
        if isinstance(en, tuple) != isinstance(zh, tuple):
            wrong.append(f"{key}: plural in one catalogue only")
            continue
        wanted = i18n.fields(_forms(en)[-1]) - {"n"}
        for text in _forms(en) + _forms(zh):
            if not text.strip() and key != "format.sentence_join":
                wrong.append(f"{key}: empty message")
            elif i18n.fields(text) - {"n"} != wanted:
                wrong.append(f"{key}: {text!r} has other fields than {wanted}")
    assert not wrong, "\n".join(wrong)
    assert len(EN.keys()) > 800


def test_every_key_the_code_asks_for_is_in_the_catalogue():
    """Literal keys in t("...") calls; keys built from parts (f"period.{name}") are checked by running reports."""
    used = set()
    for path in (ROOT / "userops_lib").rglob("*.py"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_0-9]+(?:\.[a-z_0-9]+)+)["']""", path.read_text(encoding="utf-8")))
    assert len(used) > 80
    assert used <= EN.keys(), used - EN.keys()
    errors = set()  # problems a report can show name their message by key="..." (error.<key>, error.<key>.fix)
    for path in (ROOT / "userops_lib").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        errors |= set(re.findall(r"""\bkey=["']([a-z_0-9.]+)["']""", text))
        # a parameter's problem: problem(name, "param.choice", ...) (contract.problem and its aliases)
        errors |= set(re.findall(r"""\b(?:problem|keyed)\(\s*[^,()]+,\s*["']([a-z_0-9.]+)["']""", text))
    assert len(errors) >= 12
    wanted = {f"error.{k}" for k in errors} | {f"error.{k}.fix" for k in errors}
    assert wanted <= EN.keys(), wanted - EN.keys()


def test_chinese_text_has_no_english_words_beyond_names_and_units():
    """A zh message may keep product terms (DAU, ARPU, UTC, CSV, Wilson) but no English sentence."""
    allowed = {
        "DAU",
        "WAU",
        "MAU",
        "ARPU",
        "ARPPU",
        "UTC",
        "CSV",
        "KPI",
        "CI",
        "Wilson",
        "userops",
        "manifest",
        "json",
        "notebook",
        "users",
        "user_id",
        "event_at",
        "pts",
        "Holm",
        "LTV",
        "CUPED",
        "Qini",
        "bootstrap",
        "Cochran",
        "Newcombe",
        "Welch",
        "delta",
        "theta",
        "Benjamini",
        "Hochberg",
        "other",
        "RFM",
        "Kruskal",
        "Wallis",
        "Spearman",
        "floor",
        # survival analysis keeps its method names, as Chinese texts do: Kaplan–Meier, Cox, log-rank
        "Kaplan",
        "Meier",
        "Cox",
        "log",
        "rank",
        "RMST",
        "Greenwood",
        "Schoenfeld",
        "Brier",
        # table and column names that error messages name
        "events",
        "assignments",
        "revenue",
        "outcomes",
        "duration",
        "churned",
        # customer value keeps its model and method names: BG/NBD, Gamma-Gamma, MCMC, NUTS, Wald
        "BG",
        "NBD",
        "Gamma",
        "MCMC",
        "NUTS",
        "Wald",
        "Fader",
        "Hardie",
        "Lee",
        "pymc",
        "marketing",
        "alpha",
        "hat",  # R-hat
        "ESS",  # effective sample size, as arviz names it
        "method",  # the parameter, and its value map
        "map",
        # dataset.yml keys and encoding names, written as they are in every language
        "encoding",
        "tables",
        "UTF",
        # analytics products the reader compares with, and the funnel parameters a definition names
        "PostHog",
        "Amplitude",
        "Mixpanel",
        "entry",
        "best",
        # the analyst cell names the libraries an analyst types
        "pandas",
        "DataFrame",
        "Ibis",
        "DuckDB",
        "ID",  # 用户 ID: how Chinese product teams write it
        # names of formats, engines and runtimes in the data layer's messages
        "URL",
        "Parquet",
        "YAML",
        "Spark",
        "PySpark",
        "Java",
        # IANA time zone names are names, written as they are in every language
        "IANA",
        "Asia",
        "Shanghai",
        "Europe",
        "Berlin",
        "America",
        "New_York",
    }
    for key, text in ZH.messages.items():
        for form in _forms(text):
            # fields, file names and code (`inline code`, name=value, snake_case names of columns and parameters)
            # are no English
            code = r"`[^`]*`|\{[^}]*\}|\w+\.(csv|json|yml)|\w+=\w+|\b[a-z]+_[a-z_]+\b"
            words = set(re.findall(r"[A-Za-z_]{2,}", re.sub(code, "", form)))
            assert words <= allowed, (key, words - allowed)


def test_plural_forms_follow_the_count():
    with i18n.language("en"):
        assert i18n.t("report.fact.more_campaigns", n=1) == "... and 1 more campaign"
        assert i18n.t("report.fact.more_campaigns", n=3) == "... and 3 more campaigns"
    with i18n.language("zh"):
        assert i18n.t("report.fact.more_campaigns", n=1) == i18n.t("report.fact.more_campaigns", n=3).replace("3", "1")


def test_a_missing_key_is_an_error_not_english():
    with pytest.raises(KeyError, match="not in the zh catalogue"), i18n.language("zh"):
        i18n.t("overview.no_such_message")


def test_values_with_braces_are_text_not_fields():
    with i18n.language("en"):
        assert i18n.t("report.restricted", restriction="plan = {x} $5") == "Restricted to users with plan = {x} $5."


def test_numbers_and_dates_read_as_a_chinese_reader_expects():
    day = pd.Timestamp("2025-12-01 08:00")
    with i18n.language("zh"):
        assert narrative.day(day) == "2025年12月1日"
        assert narrative.month(day) == "2025年12月"
        assert narrative.spoken(12_345) == "1.2万" and narrative.spoken(123_456_789) == "1.2亿"
        assert narrative.spoken(9_999) == "9,999"
        assert narrative.percent(0.2361) == "23.6%"
        assert narrative.yes_no(True) == "是" and narrative.percent(float("nan")) == "无"
    with i18n.language("en"):
        assert narrative.day(day) == "1 Dec 2025" and narrative.month(day) == "Dec 2025"
        assert narrative.spoken(12_345) == "12,345"


@pytest.mark.slow
def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        i18n.use("fr")
    result = subprocess.run(
        [sys.executable, "-m", "userops_lib.cli", "report", "--lang", "fr"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 2 and "invalid choice: 'fr'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_config_language_is_checked(tmp_path):
    config = tmp_path / "batch.yml"
    config.write_text("language: fr\n")
    result = subprocess.run(
        [sys.executable, "-m", "userops_lib.cli", "report", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "language" in result.stderr and "Traceback" not in result.stderr


# Method names a manager does not read: they go in parentheses or the definitions, never first.
JARGON = re.compile(
    r"CUPED|Qini|censor|删失|Brier|log-rank|Cox|Kaplan|BG/NBD|Gamma-Gamma|Wilson|Newcombe|Cochran|z-test|z 检验|"
    r"RMST|Holm|Benjamini|bootstrap|MCMC|R-hat|Schoenfeld|SRM|hazard|风险比|proportional|比例风险",
    re.I,
)
SAID_TO_READERS = (".finding", ".warning", ".hazard.", ".ph.", "bottom_line", ".verdict")
METHOD_NOTES = {"churn_survival.ph.none", "churn_survival.ph.redundant"}  # beside the definitions


@pytest.mark.parametrize("code", ["en", "zh_CN"])
def test_findings_say_what_it_means_before_naming_a_method(code):
    """Every sentence a finding, warning or verdict says starts in plain words: the first clause (up to
    the first comma, colon, semicolon or parenthesis) names no statistical method."""
    from babel.messages.pofile import read_po

    with open(ROOT / "userops_lib" / "locales" / code / "LC_MESSAGES" / "userops.po", "rb") as handle:
        catalogue = read_po(handle)
    leading = []
    for message in catalogue:
        key = message.id if isinstance(message.id, str) else (message.id[0] if message.id else "")
        if not key or key in METHOD_NOTES or not any(kind in key for kind in SAID_TO_READERS):
            continue
        for text in [message.string] if isinstance(message.string, str) else list(message.string):
            for sentence in re.split(r"(?<=[.!?。！？])\s*", text):
                clause = re.split(r"[,;:(，；：（]", sentence, maxsplit=1)[0]
                if JARGON.search(clause):
                    leading.append((key, clause))
    assert not leading
