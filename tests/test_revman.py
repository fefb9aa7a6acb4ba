"""RevMan 5 files and RevMan Web data packages: reading, RevMan's algorithms, ``bayesmtor revman``.

References, never computed by bayesmtor:

* ``Fleiss1993.rm5`` / ``Fleiss1993.zip`` (R meta's extdata, in ``../shared/fixtures/revman``):
  RevMan 5.0.23's own stored results;
* ``tests/data/revman/synthetic.rm5``: stored results computed by R metafor
  (``tests/reference/revman_reference.R``: rma.mh, rma.peto, rma, DerSimonian-Laird about the MH
  Q by hand), covering subgroups, random effects, Peto, SMD, MD, a hazard ratio, a double-zero
  outcome, footnotes, Windows-1252 bytes and unescaped characters;
* ``tests/reference/revman_escalc.json``: metafor ``escalc`` MD/SMD and RevMan's Hedges' g.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bayesmtor import cli, effects
from bayesmtor.errors import InputError
from bayesmtor.frequentist import rma
from bayesmtor.frequentist.revman import revman_random_effects, subgroup_differences
from bayesmtor.revman import read_revman, read_revman_review
from bayesmtor.revman.recompute import COMPARED_KEYS, JSON_KEYS, REVMAN_KEYS, revman_reanalysis
from bayesmtor.vocabulary import REVMAN_DATA_TYPES

HERE = Path(__file__).resolve().parent
SYNTHETIC = HERE / "data" / "revman" / "synthetic.rm5"
ESCALC = HERE / "reference" / "revman_escalc.json"
#: R's double-precision results carried through text with 17 significant digits; the two
#: implementations differ by rounding only (observed < 2e-14).
TIGHT = 1e-10

#: RevMan's computed attributes (results, never input): blanked in the copy that proves the
#: recomputation does not read them (O_E and VAR are input in IPD_DATA, SE in IV_DATA).
COMPUTED = (
    "EFFECT_SIZE", "CI_START", "CI_END", "CHI2", "DF", "P_CHI2", "I2", "TAU2", "Z", "P_Z", "Q",
    "P_Q", "I2_Q", "LOG_EFFECT_SIZE", "LOG_CI_START", "LOG_CI_END", "WEIGHT", "VAR", "O_E",
)  # fmt: skip


@pytest.fixture(scope="module")
def fixtures(repo_root: Path) -> Path:
    folder = repo_root.parent / "shared" / "fixtures" / "revman"
    if not (folder / "Fleiss1993.rm5").is_file() or not (folder / "Fleiss1993.zip").is_file():
        pytest.skip(
            f"RevMan sample files not found in {folder} (R meta's Fleiss1993.rm5 and .zip); "
            "clone with ../shared beside the repository to run these checks"
        )
    return folder


@pytest.fixture(scope="module")
def synthetic():
    return revman_reanalysis(SYNTHETIC)


def _blank_computed(text: str) -> str:
    """A copy of an .rm5 text with every computed attribute emptied (SE of data rows too,
    except in IV_DATA, where SE is the input)."""
    names = "|".join(COMPUTED)

    def blank(tag: re.Match[str]) -> str:
        inputs = {"IPD_DATA": ("O_E", "VAR"), "IV_DATA": ("SE",)}.get(tag.group(1), ())
        return re.sub(
            rf'\b({names}|SE)="[^"]*"',
            lambda a: (
                a.group(0)
                if a.group(1) in inputs
                or (a.group(1) == "SE" and not tag.group(1).endswith("_DATA"))
                else f'{a.group(1)}=""'
            ),
            tag.group(0),
        )

    return re.sub(r"<([A-Z_0-9]+)\b[^>]*>", blank, text)


# --------------------------------------------------------------------------------------------
# the real RevMan files
# --------------------------------------------------------------------------------------------


def test_fleiss_rm5_reproduces_revman_exactly(fixtures: Path) -> None:
    res = revman_reanalysis(fixtures / "Fleiss1993.rm5")
    row = res.table.iloc[0]
    # RevMan 5.0.23: MH OR 0.8968655609 [0.8405144009, 0.9569947088], chi2 9.946056, 6 df
    assert math.exp(row["estimate"]) == pytest.approx(0.8968655609130709, rel=TIGHT)
    assert math.exp(row["ci_low"]) == pytest.approx(0.8405144008917793, rel=TIGHT)
    assert math.exp(row["ci_high"]) == pytest.approx(0.9569947088336491, rel=TIGHT)
    assert row["Q"] == pytest.approx(9.946055983220074, rel=TIGHT)
    assert row["I2"] == pytest.approx(39.67458045558399, rel=TIGHT)
    assert abs(row["z"]) == pytest.approx(3.287633061337987, rel=TIGHT)
    assert row["k"] == 7 and row["method"] == "MH" and row["model"] == "fixed"
    assert res.table["match"].tolist() == [True, True]
    studies = read_revman(fixtures / "Fleiss1993.rm5")
    assert {"MRC-1", "ISIS-2", "Davis"} <= set(studies["study"])
    assert studies.loc[studies["study"] == "ISIS-2", "year"].item() == 1988


def test_fleiss_study_estimates_are_revmans(fixtures: Path) -> None:
    """RevMan's per-study log OR and SE (stored in the file) from the counts, to 1e-10."""
    studies = revman_reanalysis(fixtures / "Fleiss1993.rm5").studies
    dich = studies[studies["data_type"] == "dichotomous"]
    np.testing.assert_allclose(dich["yi_used"], dich["revman_estimate"], rtol=TIGHT)
    np.testing.assert_allclose(np.sqrt(dich["vi_used"]), dich["revman_se"], rtol=TIGHT)


def test_fleiss_smd_outcome_has_no_stored_result_to_compare(fixtures: Path) -> None:
    rec = revman_reanalysis(fixtures / "Fleiss1993.rm5").records()[1]
    assert rec["measure"] == "SMD" and rec["revman"]["estimate"] is None
    assert rec["estimate"] is not None and rec["mu_median"] is not None


def test_fleiss_package_reads_the_same_data_and_matches(fixtures: Path) -> None:
    rm5 = read_revman(fixtures / "Fleiss1993.rm5")
    pkg_review = read_revman_review(fixtures / "Fleiss1993.zip")
    assert pkg_review.format == "data package"
    pkg = pkg_review.studies
    cols = ["events_trt", "n_trt", "events_ctl", "n_ctl", "mean_trt", "sd_trt", "mean_ctl"]
    a = rm5.sort_values(["outcome_no", "study"]).reset_index(drop=True)
    b = pkg.sort_values(["outcome_no", "study"]).reset_index(drop=True)
    assert a["study"].tolist() == b["study"].tolist()
    for col in cols:
        ok = a[col].notna()
        np.testing.assert_array_equal(a.loc[ok, col], b.loc[ok, col])
    res = revman_reanalysis(pkg_review)
    assert bool(res.table["match"].iloc[0]) is True
    assert res.table["estimate"].iloc[0] == pytest.approx(
        revman_reanalysis(fixtures / "Fleiss1993.rm5").table["estimate"].iloc[0], rel=1e-14
    )
    # RevMan Web wrote zeros for the SMD outcome it did not pool: read as "not computed"
    assert pd_isna(res.table["revman_estimate"].iloc[1])


def pd_isna(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


# --------------------------------------------------------------------------------------------
# the synthetic file (R metafor's numbers)
# --------------------------------------------------------------------------------------------


def test_every_stored_number_agrees_with_r_metafor(synthetic) -> None:
    t = synthetic.table
    estimable = t["reason"].isna()
    assert t.loc[estimable, "match"].tolist() == [True] * int(estimable.sum())
    for key in COMPARED_KEYS:
        ours = t[key].to_numpy(float)
        stored = t[f"revman_{key}"].to_numpy(float)
        if key == "z":
            ours = np.abs(ours)
        both = np.isfinite(stored) & estimable.to_numpy()
        if key == "tau2":
            both &= (t["model"] == "random").to_numpy()
        scale = np.maximum(np.abs(stored[both]), 1e-12)
        assert np.all(np.abs(ours[both] - stored[both]) <= TIGHT * scale), key


def test_random_effects_about_the_mh_q_differ_from_plain_dl(synthetic) -> None:
    t = synthetic.table
    low = t[(t["outcome_no"] == 1) & (t["subgroup_no"] == 1)].iloc[0]
    studies = synthetic.studies
    sel = (studies["outcome_no"] == 1) & (studies["subgroup_no"] == 1)
    yi, vi = studies.loc[sel, "yi_used"], studies.loc[sel, "vi_used"]
    plain = rma(yi.to_numpy(), vi=vi.to_numpy(), method="DL")
    assert low["tau2"] == pytest.approx(low["revman_tau2"], rel=TIGHT)
    assert abs(plain.tau2 - low["tau2"]) > 1e-4  # the MH-based Q is not the IV Q


def test_revman_dl_with_the_iv_q_is_metafor_dl() -> None:
    yi = np.array([-0.3, 0.1, -0.5, 0.2, -0.05])
    vi = np.array([0.04, 0.09, 0.02, 0.05, 0.03])
    fe = rma(yi, vi=vi, method="FE")
    dl = rma(yi, vi=vi, method="DL")
    re = revman_random_effects(yi, vi, fe.Q)
    assert re.tau2 == pytest.approx(dl.tau2, rel=1e-12)
    assert re.estimate == pytest.approx(dl.estimate, rel=1e-12)
    assert re.se == pytest.approx(dl.se, rel=1e-12)


def test_subgroup_differences_need_two_subgroups() -> None:
    assert all(math.isnan(x) for x in subgroup_differences([0.1], [0.2]))
    test = subgroup_differences([0.1, -0.3, np.nan], [0.2, 0.1, 0.3])
    assert test.df == 1 and test.Q > 0


def test_every_analysis_appears_once_with_the_documented_keys(synthetic) -> None:
    recs = synthetic.records()
    # 9 outcomes, 2 of them with 2 subgroups
    assert len(recs) == 13
    ids = [(r["comparison_no"], r["outcome_no"], r["subgroup_no"]) for r in recs]
    assert len(set(ids)) == len(ids)
    for rec in recs:
        assert list(rec) == list(JSON_KEYS)
        assert list(rec["revman"]) == list(REVMAN_KEYS)
    json.dumps(recs, allow_nan=False)
    overall = [r for r in recs if r["subgroup_no"] is None and r["outcome_no"] in (1, 4)]
    assert all(r["Q_between"] is not None for r in overall)
    hr = next(r for r in recs if r["measure"] == "HR")
    assert hr["data_type"] == "generic" and hr["model"] == "random"
    assert {r["data_type"] for r in recs} == {"dichotomous", "continuous", "generic", "o_e"}
    assert {r["data_type"] for r in recs} <= set(REVMAN_DATA_TYPES)


def test_swapped_events_are_analysed_as_non_events(synthetic, tmp_path: Path) -> None:
    row = synthetic.table[synthetic.table["outcome_no"] == 9].iloc[0]
    assert row["swap_events"] and bool(row["match"])
    path = tmp_path / "unswapped.rm5"
    path.write_bytes(SYNTHETIC.read_bytes().replace(b'SWAP_EVENTS="YES"', b'SWAP_EVENTS="NO"'))
    plain = revman_reanalysis(path).table
    assert not bool(plain.loc[plain["outcome_no"] == 9, "match"].iloc[0])


def test_a_not_estimable_analysis_is_listed_with_its_reason(synthetic) -> None:
    rec = next(r for r in synthetic.records() if r["outcome_no"] == 6)
    assert rec["estimate"] is None and rec["mu_median"] is None and rec["match"] is None
    assert "double-zero" in rec["reason"]
    assert rec["k"] == 0


def test_a_study_that_is_not_estimable_is_left_out_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "sd0.rm5"
    text = _text().replace('SD_1="3.1" SD_2="3.4"', 'SD_1="0" SD_2="0"', 1)
    path.write_bytes(text.encode("cp1252"))
    res = revman_reanalysis(path)
    row = res.table[res.table["outcome_no"] == 3].iloc[0]
    assert row["k"] == 4 and row["reason"] is None and not bool(row["match"])
    st = res.studies[(res.studies["outcome_no"] == 3) & res.studies["excluded_reason"].notna()]
    assert st["study"].tolist() == ["Alpha"]
    assert "zero or undefined variance" in st["excluded_reason"].item()


def test_an_outcome_without_studies_is_listed_as_not_estimable(tmp_path: Path) -> None:
    path = tmp_path / "empty.rm5"
    text = _text().replace(
        "</COMPARISON>",
        '<DICH_OUTCOME EFFECT_MEASURE="RR" METHOD="MH" NO="10" RANDOM="NO">'
        "<NAME>Planned, no data</NAME></DICH_OUTCOME></COMPARISON>",
    )
    path.write_bytes(text.encode("cp1252"))
    rec = revman_reanalysis(path).records()[-1]
    assert rec["outcome_no"] == 10 and rec["estimate"] is None and rec["k"] == 0
    assert rec["reason"] == "no study in this analysis"


def test_footnotes_encodings_and_repairs_are_read(synthetic) -> None:
    review = synthetic.review
    studies = review.studies
    assert "Müller – Schön" in set(studies["study"])  # Windows-1252 bytes, ISO-8859-1 declared
    notes = set(studies["footnote"].dropna())
    assert notes == {"events by week 12, p < 0.05 in the report", "HR read from Figure 2"}
    assert "Children & adolescents" in set(review.analyses["subgroup"].dropna())
    assert len(review.notes) == 2 and all(
        re.match(r"line \d+, column \d+", n) for n in review.notes
    )


def test_the_recomputation_does_not_read_revmans_results(tmp_path: Path, synthetic) -> None:
    blank = tmp_path / "blank.rm5"
    blank.write_bytes(_blank_computed(SYNTHETIC.read_bytes().decode("cp1252")).encode("cp1252"))
    res = revman_reanalysis(blank)
    assert res.table["revman_estimate"].isna().all()
    assert res.table["match"].isna().all()
    cols = ["k", "estimate", "se", "ci_low", "ci_high", "Q", "Q_df", "I2", "tau2", "z", "pval",
            "Q_between", "Q_between_pval", "mu_median", "mu_low", "mu_high", "tau_median"]  # fmt: skip
    np.testing.assert_array_equal(
        res.table[cols].to_numpy(float), synthetic.table[cols].to_numpy(float)
    )


def test_blanking_reaches_revman_data_too(fixtures: Path, tmp_path: Path) -> None:
    text = (fixtures / "Fleiss1993.rm5").read_bytes().decode("latin-1")
    blank = tmp_path / "Fleiss-blank.rm5"
    blank.write_bytes(_blank_computed(text).encode("latin-1"))
    ours = revman_reanalysis(blank).table
    ref = revman_reanalysis(fixtures / "Fleiss1993.rm5").table
    assert ours["revman_estimate"].isna().all()
    np.testing.assert_array_equal(ours["estimate"].to_numpy(float), ref["estimate"].to_numpy(float))


# --------------------------------------------------------------------------------------------
# a RevMan Web data package of the same analyses (six decimals, R metafor's numbers)
# --------------------------------------------------------------------------------------------

PACKAGE = HERE / "data" / "revman" / "package"
_PKG_RESULTS = ("Mean", "CI start", "CI end", "Heterogeneity Tau²", "Heterogeneity Chi²",
                "Heterogeneity df", "Heterogeneity P", "Heterogeneity I²", "Effect Z", "Effect P",
                "Subgroup Chi²", "Subgroup df", "Subgroup P", "Subgroup I²")  # fmt: skip


def _package_zip(path: Path, blank: bool = False) -> Path:
    """The package CSVs inside a data zip inside a download zip, as the Cochrane Library has it."""
    import csv
    import io

    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        for csv_path in sorted(PACKAGE.glob("*.csv")):
            data = csv_path.read_bytes()
            if blank:
                rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
                cols = [i for i, c in enumerate(rows[0]) if c in _PKG_RESULTS]
                for r in rows[1:]:
                    for i in cols:
                        r[i] = ""
                buf = io.StringIO()
                csv.writer(buf, lineterminator="\r\n").writerows(rows)
                data = b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")
            zf.writestr(f"SYN-analysis-data/{csv_path.name}", data)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("SYN/SYN-article.pdf", b"%PDF-1.4 placeholder")
        zf.writestr("SYN/SYN-files/SYN-data.zip", inner.getvalue())
    return path


def test_a_data_package_with_subgroups_matches_r_metafor(tmp_path: Path, synthetic) -> None:
    res = revman_reanalysis(_package_zip(tmp_path / "syn.zip"))
    t = res.table
    assert len(t) == 10  # 6 outcomes, 2 of them with 2 subgroups
    assert t["match"].tolist() == [True] * 10, t.loc[t["match"] != True, "mismatch"]  # noqa: E712
    # the same data as the .rm5 file: the same recomputation
    ref = synthetic.table.set_index(["outcome_no", "subgroup_no"])
    for _, row in t.iterrows():
        other = ref.loc[(row["outcome_no"], row["subgroup_no"])]
        assert row["estimate"] == pytest.approx(other["estimate"], rel=1e-13)
        assert row["measure"] == other["measure"] and row["method"] == other["method"]
    assert set(t["data_type"]) == {"dichotomous", "continuous", "generic"}


def test_a_data_package_is_recomputed_without_its_results(tmp_path: Path) -> None:
    full = revman_reanalysis(_package_zip(tmp_path / "full.zip")).table
    blank = revman_reanalysis(_package_zip(tmp_path / "blank.zip", blank=True)).table
    assert blank["revman_estimate"].isna().all() and blank["match"].isna().all()
    cols = ["estimate", "ci_low", "ci_high", "Q", "tau2", "z", "Q_between", "mu_median"]
    np.testing.assert_array_equal(blank[cols].to_numpy(float), full[cols].to_numpy(float))


def test_a_number_beyond_the_tolerance_is_a_mismatch(tmp_path: Path) -> None:
    text = (PACKAGE / "SYN-overall-estimates-and-settings.csv").read_text(encoding="utf-8-sig")
    edited = tmp_path / "edited"
    edited.mkdir()
    for f in PACKAGE.glob("*.csv"):
        (edited / f.name).write_bytes(f.read_bytes())
    (edited / "SYN-overall-estimates-and-settings.csv").write_text(
        text.replace("6.115723", "6.115753"), encoding="utf-8-sig"
    )
    path = tmp_path / "edited.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in edited.glob("*.csv"):
            zf.write(f, f"SYN-analysis-data/{f.name}")
    t = revman_reanalysis(path).table
    assert t["match"].iloc[0] is False or bool(t["match"].iloc[0]) is False
    assert t["mismatch"].iloc[0] == "Q"


# --------------------------------------------------------------------------------------------
# encodings, one-line documents, malformed and truncated files
# --------------------------------------------------------------------------------------------


def _text() -> str:
    return SYNTHETIC.read_bytes().decode("cp1252")


def _studies_of(path: Path) -> list[str]:
    return read_revman(path)["study"].tolist()


@pytest.mark.parametrize(
    "variant", ["utf8-declared", "utf8-undeclared", "utf8-bom", "cp1252-declared", "one-line"]
)
def test_encodings_and_one_line_documents_read_alike(tmp_path: Path, variant: str) -> None:
    text = _text()
    decl = '<?xml version="1.0" encoding="ISO-8859-1" standalone="no"?>'
    path = tmp_path / f"{variant}.rm5"
    if variant == "utf8-declared":
        data = text.replace(decl, '<?xml version="1.0" encoding="UTF-8"?>').encode("utf-8")
    elif variant == "utf8-undeclared":
        data = text.replace(decl, "").encode("utf-8")
    elif variant == "utf8-bom":
        data = b"\xef\xbb\xbf" + text.replace(decl, "").encode("utf-8")
    elif variant == "cp1252-declared":
        data = text.replace("ISO-8859-1", "windows-1252").encode("cp1252")
    else:
        data = text.replace("\r\n", "").encode("cp1252")
    path.write_bytes(data)
    assert _studies_of(path) == _studies_of(SYNTHETIC)
    a = revman_reanalysis(path).table["estimate"].to_numpy(float)
    b = revman_reanalysis(SYNTHETIC).table["estimate"].to_numpy(float)
    np.testing.assert_array_equal(a, b)


def test_invalid_bytes_in_a_utf8_file_are_refused_with_line_and_column(tmp_path: Path) -> None:
    text = _text().replace("ISO-8859-1", "UTF-8")
    path = tmp_path / "bad.rm5"
    path.write_bytes(text.encode("cp1252"))  # "Müller" in Windows-1252 bytes: not UTF-8
    line = next(i for i, ln in enumerate(text.split("\n"), 1) if "Müller" in ln)
    col = text.split("\n")[line - 1].index("ü") + 1
    with pytest.raises(InputError, match=rf"bad\.rm5, line {line}: column {col}: byte 0xFC"):
        read_revman(path)


def test_a_lt_before_a_letter_is_refused_at_its_place_on_one_line(tmp_path: Path) -> None:
    text = _text().replace("\r\n", "").replace("Pain score", "Pain <score")
    path = tmp_path / "lt.rm5"
    path.write_bytes(text.encode("cp1252"))
    col = text.index("<score") + len("<score") + 1  # where the parser finds the tag malformed
    with pytest.raises(InputError, match=rf"lt\.rm5, line 1: column {col}: not a well-formed"):
        read_revman(path)


def test_a_truncated_file_is_refused_naming_its_last_line(tmp_path: Path) -> None:
    data = SYNTHETIC.read_bytes()
    path = tmp_path / "cut.rm5"
    path.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(InputError, match=r"cut\.rm5, line \d+: column \d+: .*truncated"):
        read_revman(path)
    assert cli.main(["revman", str(path)]) == 2


def test_a_truncated_zip_and_a_zip_without_a_package_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pkg.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(InputError, match="not a RevMan Web data package"):
        read_revman(path)
    data = path.read_bytes()
    path.write_bytes(data[:20])
    with pytest.raises(InputError, match="truncated"):
        read_revman(path)


def test_other_xml_and_bad_numbers_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.rm5"
    path.write_text("<?xml version='1.0'?><OTHER/>", encoding="utf-8")
    with pytest.raises(InputError, match="not a RevMan 5 file"):
        read_revman(path)
    path.write_bytes(_text().replace('EVENTS_1="12"', 'EVENTS_1="twelve"', 1).encode("cp1252"))
    with pytest.raises(InputError, match=r"line \d+: <DICH_DATA> attribute EVENTS_1: 'twelve'"):
        read_revman(path)


# --------------------------------------------------------------------------------------------
# MD and SMD against R metafor escalc
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["fleiss1993cont", "normand1999"])
def test_md_and_smd_equal_metafor_escalc(dataset: str) -> None:
    ref = json.loads(ESCALC.read_text(encoding="utf-8"))[dataset]
    d = ref["data"]
    args = [np.array(d[k], float) for k in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")]
    for name, (yi, vi) in {
        "MD": effects.mean_difference(*args),
        "SMD": effects.standardized_mean_difference(*args),
        "SMD_revman": effects.standardized_mean_difference(*args, convention="revman"),
    }.items():
        np.testing.assert_allclose(yi, ref[name]["yi"], rtol=TIGHT, atol=0, err_msg=name)
        np.testing.assert_allclose(vi, ref[name]["vi"], rtol=TIGHT, atol=0, err_msg=name)


def test_revmans_g_is_not_metafors() -> None:
    args = (5.0, 4.7, 13, 6.5, 3.8, 13)
    g_meta, v_meta = effects.standardized_mean_difference(*args)
    g_rev, v_rev = effects.standardized_mean_difference(*args, convention="revman")
    assert 1e-6 < abs(g_meta - g_rev) < 1e-3 * abs(g_meta)
    assert v_rev > v_meta
    with pytest.raises(InputError, match="convention"):
        effects.standardized_mean_difference(*args, convention="cohen")


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------


def test_cli_json_and_output_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert cli.main(["revman", str(SYNTHETIC), "--json", "--out", str(out)]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 13 and list(recs[0]) == list(JSON_KEYS)
    assert {p.name for p in out.iterdir()} == {
        "analyses.csv", "analyses.json", "studies.csv", "report.html", ".bayesmtor-output",
    }  # fmt: skip
    assert json.loads((out / "analyses.json").read_text(encoding="utf-8")) == recs
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "RevMan beside bayesmtor" in html and "Children &amp; adolescents" in html
    assert cli.main(["revman", str(SYNTHETIC), "--out", str(out)]) == 2  # exists: no --force
    assert cli.main(["revman", str(SYNTHETIC), "--out", str(out), "--force"]) == 0
    text = capsys.readouterr().out
    assert "1.1 Response (dose subgroups)" in text and "subgroup differences" in text


def test_cli_refuses_an_output_folder_holding_the_input(tmp_path: Path) -> None:
    src = tmp_path / "review.rm5"
    src.write_bytes(SYNTHETIC.read_bytes())
    assert cli.main(["revman", str(src), "--out", str(tmp_path), "--force"]) == 2
    assert src.read_bytes() == SYNTHETIC.read_bytes()


def test_cli_priors_are_used(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["revman", str(SYNTHETIC), "--json", "--tau-prior", "half-normal:0.1"]) == 0
    narrow = json.loads(capsys.readouterr().out)
    assert cli.main(["revman", str(SYNTHETIC), "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert narrow[0]["tau_median"] < default[0]["tau_median"]
    assert narrow[0]["estimate"] == default[0]["estimate"]


def test_a_mismatch_with_revman_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _text()
    path = tmp_path / "edited.rm5"
    path.write_bytes(text.replace('CHI2="6.1157', 'CHI2="6.2157', 1).encode("cp1252"))
    assert cli.main(["revman", str(path)]) == 1
    assert "NO (Q)" in capsys.readouterr().out
